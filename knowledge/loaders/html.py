"""HTML (beautifulsoup4 with html.parser): boilerplate elements removed, heading sections, data
tables as rows; decoded with the page's declared charset when it has one."""

from __future__ import annotations

import re

from knowledge.loaders.draft import Draft
from knowledge.loaders.text import decode_text

_REMOVED_HTML = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form",
                 "template", "svg", "iframe", "object", "head")
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HTML_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "li", "dl", "dt", "dd",
    "table", "thead", "tbody", "tfoot", "caption", "figure", "figcaption", "address", "hr",
    "details", "summary", "body", "html", "center", "fieldset",
}
# Longer rows are layout tables wrapping prose, not data.
_HTML_ROW_MAX_CHARS = 400
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I)


def load_html(name: str, data: bytes, draft: Draft) -> str | None:
    from bs4 import BeautifulSoup

    head = data[:4096]
    declared = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    text = decode_text(name, data, declared.group(1).decode("ascii") if declared else None)
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else None
    for tag in soup.find_all(_REMOVED_HTML):
        if not tag.decomposed:
            tag.decompose()
    _walk_html(soup, draft)
    return title


def _walk_html(soup, draft: Draft) -> None:
    """Depth-first, without recursion (hostile pages nest deeply), into heading sections."""
    from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    path: list[tuple[int, str]] = []
    parts: list[str] = []
    skip_strings = (Comment, Declaration, Doctype, ProcessingInstruction)

    def flush() -> None:
        draft.add(_tidy_html_text("".join(parts)), heading_path=tuple(h for _, h in path))
        parts.clear()

    # Stack items: a node to enter, or a string to emit when a block ends.
    stack: list[object] = list(reversed(list(soup.children)))
    pre_depth = 0
    while stack:
        node = stack.pop()
        if isinstance(node, str) and not isinstance(node, NavigableString):
            if node == "\0pre-end":
                pre_depth -= 1
            else:
                parts.append(node)
            continue
        if isinstance(node, NavigableString):
            if isinstance(node, skip_strings):
                continue
            s = str(node)
            parts.append(s if pre_depth else re.sub(r"\s+", " ", s))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.lower()
        if name in _HTML_HEADINGS:
            heading = node.get_text(" ", strip=True)
            heading = " ".join(heading.split())
            flush()
            draft.enter_heading(path, _HTML_HEADINGS[name], heading)
            continue
        if name == "br":
            parts.append("\n")
            continue
        if name == "tr":
            cells = [c.get_text(" ", strip=True) for c in node.find_all(["td", "th"], recursive=False)]
            cells = [" ".join(c.split()) for c in cells]
            if sum(map(len, cells)) <= _HTML_ROW_MAX_CHARS:
                # A data row: cells on one line. Empty cells are layout padding here.
                if any(cells):
                    lead = "" if parts and parts[-1].endswith("\n") else "\n"
                    parts.append(lead + " | ".join(c for c in cells if c) + "\n")
                continue
            # A layout table holding the page's prose: read its cells as blocks instead.
            parts.append("\n\n")
            stack.append("\n\n")
        if name == "pre":
            pre_depth += 1
            parts.append("\n\n")
            stack.append("\0pre-end")
            stack.append("\n\n")
        elif name in _HTML_BLOCKS:
            parts.append("\n\n")
            stack.append("\n\n")
        elif name in ("td", "th"):
            parts.append("\n\n")
            stack.append("\n\n")
        stack.extend(reversed(list(node.children)))
    flush()


def _tidy_html_text(text: str) -> str:
    lines = [line.strip() if line.strip() else "" for line in text.split("\n")]
    return "\n".join(lines)
