"""Output checks: the last injection-defense layer, run on every answer before it is shown.

* A secret canary is placed in the system prompt (`make_canary`); an answer containing it —
  even spaced out, case-changed or split by zero-width characters — proves the prompt leaked,
  so the answer is blocked. A long verbatim span of the system prompt blocks it too.
* Links and images are the exfiltration channel of indirect injection (an image URL carrying
  the user's data is fetched by the client the moment it renders). Only URLs of the cited
  sources survive: other Markdown links keep their text and lose the URL, other images go, and
  bare or angle-bracket URLs become "[link removed]" — judged on a Markdown parse (see below).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from bot.guards.normalize import normalize_text

SYSTEM_PROMPT_SPAN = 60  # characters of verbatim system prompt that count as a leak
REMOVED_LINK = "[link removed]"


@dataclass(frozen=True)
class OutputVerdict:
    text: str  # the answer to show (links stripped); meaningless when blocked
    blocked: bool
    reasons: tuple[str, ...]


def make_canary() -> str:
    """A fresh random marker for one system prompt, e.g. 'dc-3f9a0c1d2b4e5f60'."""
    return "dc-" + secrets.token_hex(8)


def _squash(text: str) -> str:
    """Letters and digits only, lower-case: defeats spacing, punctuation, case and ZW tricks."""
    return re.sub(r"[\W_]+", "", normalize_text(text)).casefold()


def contains_canary(text: str, canary: str) -> bool:
    return bool(canary) and _squash(canary) in _squash(text)


def leaks_system_prompt(text: str, system_prompt: str, span: int = SYSTEM_PROMPT_SPAN) -> bool:
    """True when the answer repeats ≥ `span` consecutive characters of the system prompt.

    Compared after squashing whitespace and case, so re-wrapped or re-cased copies count.
    """
    prompt = re.sub(r"\s+", " ", normalize_text(system_prompt)).casefold()
    answer = re.sub(r"\s+", " ", normalize_text(text)).casefold()
    if len(prompt) < span or len(answer) < span:
        return False
    # Every span-long window of the answer is a candidate; hashing windows of the prompt
    # makes this linear instead of quadratic.
    windows = {prompt[i : i + span] for i in range(len(prompt) - span + 1)}
    return any(answer[i : i + span] in windows for i in range(len(answer) - span + 1))


# --- links -------------------------------------------------------------------------------------
#
# Links and images are found on a CommonMark parse (markdown-it-py, as the Slack renderer parses
# answers), never by regular expressions over the text: a regex misses titles in single quotes or
# parentheses, angle-bracket destinations, reference definitions … and then Slack shows a live
# `<url|text>` link. Bare URLs inside text (which Slack and Discord auto-link) are found with
# linkify-it-py. When anything must go, the edited token stream is written back as Markdown by
# mdformat's renderer, which escapes text so the result parses to exactly the edited tree.

_HTML_WITH_URL = re.compile(r"<(?:img|a|iframe|script|link|meta|object|embed|video|audio|source)\b[^>]*>", re.IGNORECASE)


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt
    from mdformat.renderer import MDRenderer

    # html off: with it on, a paragraph that starts like HTML ("<!here> …", "<div> …") is one raw
    # html_block whose links and URLs are never looked at; off, that text is text and is checked
    # like any other (a raw tag's URL is a bare URL to linkify).
    md = MarkdownIt("commonmark", {"html": False}, renderer_cls=MDRenderer)
    md.options.update(mdformat={}, store_labels=True, parser_extension=[], codeformatters={})
    return md


@lru_cache(maxsize=1)
def _linkify():
    from linkify_it import LinkifyIt

    return LinkifyIt()


def _canonical_url(url: str) -> str:
    url = unquote(url.strip().strip("<>")).rstrip("/")
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    return url.removeprefix("www.").casefold()


def _bare_urls(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of what a chat client would auto-link in plain text: URLs with a scheme
    or www., and scheme-less ones carrying a path or query (data can ride in them). Emails and
    bare host names stay."""
    found = []
    for m in _linkify().match(text) or ():
        if m.schema == "mailto:":
            continue
        if not m.schema and not re.search(r"[/?#]", m.raw) and not m.raw.lower().startswith("www."):
            continue
        found.append((m.index, m.last_index, m.url))
    return found


def strip_untrusted_links(text: str, allowed_urls: Iterable[str]) -> tuple[str, int]:
    """Remove every link, image and auto-linked URL whose target is not allowed; returns
    (text, how many). Link text stays; images go; bare and angle-bracket URLs become
    "[link removed]". Text without anything to remove comes back unchanged."""
    allowed = {_canonical_url(u) for u in allowed_urls if u}

    def ok(url: str) -> bool:
        return _canonical_url(url) in allowed

    md = _markdown()
    env: dict = {}
    tokens = md.parse(text, env)
    removed = 0
    references = env.get("references", {})
    for label, ref in list(references.items()):
        if not ok(ref.get("href", "")):
            del references[label]  # an unused or removed definition must not be written back
    for token in tokens:
        if token.type == "html_block":
            token.content, n = _HTML_WITH_URL.subn("", token.content)
            removed += n
        if token.type != "inline" or not token.children:
            continue
        # Links never nest in CommonMark, so one flag per kind of removal is enough.
        children, dropping, autolink_text = [], False, False
        for child in token.children:
            if child.type == "link_open":
                dropping = not ok(child.attrs.get("href", ""))
                if dropping:
                    removed += 1
                    if child.markup == "autolink":  # <https://…>: its text is the URL itself
                        children.append(_text_token(child, REMOVED_LINK))
                        autolink_text = True
                    continue
            elif child.type == "link_close":
                if dropping:
                    dropping = autolink_text = False
                    continue
            elif autolink_text:
                continue
            elif child.type == "image" and not ok(child.attrs.get("src", "")):
                removed += 1
                continue
            elif child.type == "html_inline":
                child.content, n = _HTML_WITH_URL.subn("", child.content)
                removed += n
            elif child.type == "text":
                pieces = _split_bare_urls(child, ok)
                removed += sum(1 for p in pieces if p is not child and p.content == REMOVED_LINK)
                children.extend(pieces)
                continue
            children.append(child)
        token.children = children
    if not removed:
        return text, 0
    return md.renderer.render(tokens, md.options, env).rstrip("\n"), removed


def _text_token(like, content: str):
    from markdown_it.token import Token

    token = Token("text", "", 0)
    token.content = content
    token.level = like.level
    return token


def _split_bare_urls(token, ok) -> list:
    spans = [(a, b) for a, b, url in _bare_urls(token.content) if not ok(url)]
    if not spans:
        return [token]
    pieces, at = [], 0
    for a, b in spans:
        if a > at:
            pieces.append(_text_token(token, token.content[at:a]))
        pieces.append(_text_token(token, REMOVED_LINK))
        at = b
    if at < len(token.content):
        pieces.append(_text_token(token, token.content[at:]))
    return pieces


def check_output(
    text: str,
    *,
    canary: str | None,
    system_prompt: str | None,
    allowed_urls: Iterable[str],
) -> OutputVerdict:
    """Block leaks; strip links/images to anything but the cited sources' URLs."""
    reasons: list[str] = []
    if canary and contains_canary(text, canary):
        reasons.append("canary_leak")
    if system_prompt and leaks_system_prompt(text, system_prompt):
        reasons.append("system_prompt_leak")
    if reasons:
        return OutputVerdict(text="", blocked=True, reasons=tuple(reasons))
    cleaned, removed = strip_untrusted_links(text, allowed_urls)
    if removed:
        reasons.append(f"stripped_links:{removed}")
    return OutputVerdict(text=cleaned, blocked=False, reasons=tuple(reasons))


def _settled_prefix(text: str) -> str:
    """The part of a growing answer that can be checked now: up to the last whitespace (a URL or
    the canary is only judged whole), and never an unclosed Markdown link or image."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    head = text[: cut + 1] if cut >= 0 else ""
    bracket = head.rfind("[")
    if bracket >= 0:
        tail = head[bracket:]
        unclosed_label = "]" not in tail
        unclosed_target = "](" in tail and ")" not in tail[tail.index("](") + 2 :]
        if unclosed_label or unclosed_target:
            head = head[:bracket]
    return head


class StreamedOutputCheck:
    """Streamed text passes the same checks as the final answer before anyone sees it: foreign
    links are stripped as they arrive, and a leak stops the stream for good.

    Call the instance with the answer so far; it calls `show` with what may be shown."""

    def __init__(
        self, show: Callable[[str], None], *, canary: str, system_prompt: str, allowed_urls: Iterable[str] = ()
    ) -> None:
        self._show = show
        self.canary = canary
        self.system_prompt = system_prompt
        self.allowed_urls = list(allowed_urls)
        self.blocked = False
        self._shown = ""

    def __call__(self, text: str) -> None:
        if self.blocked:
            return
        verdict = check_output(
            _settled_prefix(text), canary=self.canary, system_prompt=self.system_prompt,
            allowed_urls=self.allowed_urls,
        )
        if verdict.blocked:
            self.blocked = True
            return
        if verdict.text and verdict.text != self._shown:
            self._shown = verdict.text
            self._show(verdict.text)
