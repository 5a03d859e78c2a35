"""Markdown (what the model writes) → Slack mrkdwn (what Slack renders).

The Markdown is parsed with markdown-it-py (CommonMark + strikethrough + tables) and rendered
node by node, so code stays code, `**bold**` becomes `*bold*`, `[t](u)` becomes `<u|t>`, and the
`[n]` citations — plain text to a CommonMark parser, since no reference definitions exist —
stay exactly `[n]`. `&`, `<` and `>` are escaped everywhere (Slack parses its control sequences
before formatting, inside code too).

`to_mrkdwn_blocks` returns top-level pieces (paragraphs, lists, code blocks …) so a long answer
can be split between pieces, never inside a code block, a link or a citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from connectors.autolinks import urls_as_code

SAFE_LINK_SCHEMES = ("http://", "https://", "mailto:")


def escape(text: str) -> str:
    """Escape Slack's three control characters (and nothing else: Slack wants exactly these)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def document_text(text: str) -> str:
    """Text taken from a document (a title, a heading, a file name) as mrkdwn that links and
    mentions nothing: `&<>` escaped and every URL shown as code, so a document can't smuggle a
    link into docent's own lines."""
    return urls_as_code(text, escape)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # html off: the model's "<b>" is text to show, not markup to trust.
    return MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])


@dataclass(frozen=True)
class MrkdwnBlock:
    """One top-level piece of a rendered answer."""

    text: str
    is_code: bool = False


def to_mrkdwn(markdown: str) -> str:
    """The whole answer as one mrkdwn string."""
    return "\n\n".join(b.text for b in to_mrkdwn_blocks(markdown))


def to_mrkdwn_blocks(markdown: str) -> list[MrkdwnBlock]:
    root = SyntaxTreeNode(_parser().parse(markdown or ""))
    blocks: list[MrkdwnBlock] = []
    for node in root.children:
        text = _block(node, indent="").rstrip("\n")
        if text.strip():
            blocks.append(MrkdwnBlock(text, is_code=node.type in ("fence", "code_block")))
    return blocks


# --- block nodes --------------------------------------------------------------------------------
def _block(node: SyntaxTreeNode, indent: str) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline_of(node)
    if kind == "heading":
        # mrkdwn has no headings: a bold line reads as one.
        return f"*{_inline_of(node).strip('*')}*"
    if kind in ("fence", "code_block"):
        code = node.content.rstrip("\n")
        return f"```\n{escape(code)}\n```"
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, indent)
    if kind == "blockquote":
        inner = "\n".join(_block(child, "") for child in node.children)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind == "hr":
        return "───"
    if kind == "table":
        return _table(node)
    if kind == "html_block":
        return escape(node.content.rstrip("\n"))
    # Anything unexpected: render its children rather than drop text.
    return "\n".join(_block(child, indent) for child in node.children)


def _list(node: SyntaxTreeNode, indent: str) -> str:
    lines: list[str] = []
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    for i, item in enumerate(node.children):
        marker = f"{start + i}." if ordered else "•"
        parts: list[str] = []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                parts.append(_list(child, indent + "    "))
            else:
                text = _block(child, indent + "    ")
                parts.append(text.replace("\n", "\n" + indent + "    "))
        first, *rest = parts or [""]
        lines.append(f"{indent}{marker} {first}")
        lines.extend(rest)
    return "\n".join(lines)


def _table(node: SyntaxTreeNode) -> str:
    # Slack can't draw tables: a monospaced block keeps columns readable.
    rows: list[list[str]] = []
    for section in node.children:  # thead, tbody
        for tr in section.children:
            rows.append([_plain_text(cell) for cell in tr.children])
    if not rows:
        return ""
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(max(map(len, rows)))]
    lines = [" | ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return "```\n" + escape("\n".join(lines)) + "\n```"


# --- inline nodes -------------------------------------------------------------------------------
def _inline_of(node: SyntaxTreeNode) -> str:
    return "".join(_inline(child) for child in node.children)


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "inline":
        return _inline_of(node)
    if kind == "text":
        return escape(node.content)
    if kind == "code_inline":
        # A backtick inside would end the span early; Slack has no escape for it.
        return "`" + escape(node.content.replace("`", "'")) + "`"
    if kind == "strong":
        return _wrap("*", _inline_of(node))
    if kind == "em":
        return _wrap("_", _inline_of(node))
    if kind == "s":
        return _wrap("~", _inline_of(node))
    if kind == "link":
        return _link(str(node.attrs.get("href", "")), _inline_of(node))
    if kind == "image":
        alt = escape(node.content or "image")
        return _link(str(node.attrs.get("src", "")), alt)
    if kind == "softbreak":
        return "\n"
    if kind == "hardbreak":
        return "\n"
    if kind == "html_inline":
        return escape(node.content)
    return _inline_of(node) if node.children else escape(node.content)


def _wrap(mark: str, inner: str) -> str:
    # Slack only formats when the marks hug the text: move surrounding spaces outside.
    stripped = inner.strip()
    if not stripped:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()) :]
    return f"{lead}{mark}{stripped}{mark}{trail}"


def _link(href: str, label: str) -> str:
    if not href.lower().startswith(SAFE_LINK_SCHEMES):
        return label  # javascript:, relative paths …: keep the words, drop the link
    url = href.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    # '|' and '>' would end the label early; the label is already &<>-escaped.
    label = label.replace("|", "¦").replace("\n", " ")
    if not label or label == escape(href):
        return f"<{url}>"
    return f"<{url}|{label}>"


def _plain_text(node: SyntaxTreeNode) -> str:
    if node.type == "text" or node.type == "code_inline":
        return node.content
    return "".join(_plain_text(child) for child in node.children)


# --- splitting ----------------------------------------------------------------------------------
# Units that must never be cut: Slack links/mentions `<…>`, citations `[n]`, entities `&amp;`.
_ATOMS = re.compile(r"<[^<>\n]*>|\[\d+\]|&(?:amp|lt|gt);")


def split_text(text: str, limit: int) -> list[str]:
    """Cut mrkdwn prose into pieces ≤ limit, at line/space boundaries outside atoms."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _cut_point(text: str, limit: int) -> int:
    protected = [(m.start(), m.end()) for m in _ATOMS.finditer(text, 0, limit + 1)]

    def inside_atom(i: int) -> bool:
        return any(start < i < end for start, end in protected)

    for sep in ("\n", " "):
        i = text.rfind(sep, 0, limit + 1)
        while i > 0:
            if not inside_atom(i):
                return i
            i = text.rfind(sep, 0, i)
    # One unbroken run longer than the limit: cut before the atom that straddles it, else hard.
    for start, end in protected:
        if start < limit < end and start > 0:
            return start
    return limit


def pack_code_lines(lines: list[str], room: int) -> list[str]:
    """Code lines joined into pieces of at most `room` characters, cut at line ends (a line longer
    than `room` is hard-wrapped): the bodies of several complete code blocks."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        while len(line) > room:  # an absurdly long line: hard-wrap it
            if current:
                pieces.append("\n".join(current))
                current, size = [], 0
            pieces.append(line[:room])
            line = line[room:]
        if size + len(line) + 1 > room and current:
            pieces.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append("\n".join(current))
    return pieces


def split_code(block: str, limit: int) -> list[str]:
    """Split a ```code``` block into several complete code blocks, at line ends."""
    body = block[len("```\n") : -len("\n```")] if block.startswith("```\n") else block.strip("`")
    return [f"```\n{p}\n```" for p in pack_code_lines(body.split("\n"), limit - len("```\n\n```"))]


def split_blocks(blocks: list[MrkdwnBlock], limit: int) -> list[str]:
    """Pack rendered pieces into section texts ≤ limit without breaking code, links or citations."""
    units: list[str] = []
    for block in blocks:
        if len(block.text) <= limit:
            units.append(block.text)
        elif block.is_code:
            units.extend(split_code(block.text, limit))
        else:
            units.extend(split_text(block.text, limit))
    return pack_units(units, limit)


def pack_units(units: list[str], limit: int) -> list[str]:
    """Join units (each within `limit`) into as few pieces as fit, blank lines between them."""
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}\n\n{unit}" if current else unit
        if len(candidate) <= limit:
            current = candidate
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces
