"""Output checks: the last injection-defense layer, run on every answer before it is shown.

* A secret canary is placed in the system prompt (`make_canary`); an answer containing it —
  even spaced out, case-changed or split by zero-width characters — proves the prompt leaked,
  so the answer is blocked. A long verbatim span of the system prompt blocks it too.
* Links and images are the exfiltration channel of indirect injection (an image URL carrying
  the user's data is fetched by the client the moment it renders). Only URLs of the cited
  sources survive: other Markdown links keep their text and lose the URL, other images and
  bare URLs are removed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+).*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_HTML_TAG_URL = re.compile(r"<(?:img|a|iframe|script)\b[^>]*>", re.IGNORECASE)
_BARE_URL = re.compile(r"(?<![\w/(\[<])(?:(?:https?|ftp)://|www\.)[^\s<>()\[\]\"']+[^\s<>()\[\]\"'.,;:!?]", re.IGNORECASE)


def _canonical_url(url: str) -> str:
    url = url.strip().strip("<>").rstrip("/")
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    return url.removeprefix("www.").casefold()


def strip_untrusted_links(text: str, allowed_urls: Iterable[str]) -> tuple[str, int]:
    """Remove every link and image whose URL is not allowed; returns (text, how many)."""
    allowed = {_canonical_url(u) for u in allowed_urls if u}
    removed = 0

    def ok(url: str) -> bool:
        return _canonical_url(url) in allowed

    def image(m: re.Match[str]) -> str:
        nonlocal removed
        if ok(m.group(2)):
            return m.group(0)
        removed += 1
        return ""

    def link(m: re.Match[str]) -> str:
        nonlocal removed
        if ok(m.group(2)):
            return m.group(0)
        removed += 1
        return m.group(1)

    def ref_def(m: re.Match[str]) -> str:
        nonlocal removed
        if ok(m.group(1)):
            return m.group(0)
        removed += 1
        return ""

    def html(m: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        return ""

    def bare(m: re.Match[str]) -> str:
        nonlocal removed
        if ok(m.group(1) if m.lastindex else m.group(0)):
            return m.group(0)
        removed += 1
        return REMOVED_LINK

    text = _IMAGE.sub(image, text)
    text = _LINK.sub(link, text)
    text = _REF_DEF.sub(ref_def, text)
    text = _HTML_TAG_URL.sub(html, text)
    text = _AUTOLINK.sub(bare, text)
    # Kept Markdown links contain their (allowed) URL; bare-URL matching skips "(" before it.
    text = _BARE_URL.sub(bare, text)
    return text, removed


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
