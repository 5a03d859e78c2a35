"""Where a chat client would turn plain text into a link, and how to show such text inertly.

Slack (mrkdwn without `verbatim`) and Discord (everywhere) auto-link URLs in plain text. Text
that comes from a document — a title, a heading, a file name — must not become a link docent
seems to vouch for, so its URLs are shown as inline code: readable, copyable, never clickable,
never unfurled. Found with linkify-it (as the output check finds bare URLs in answers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _linkify():
    from linkify_it import LinkifyIt

    return LinkifyIt()


def linkable_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of what a chat client would auto-link: URLs with a scheme or www., and
    scheme-less ones carrying a path or query. Emails and bare names like `readme.md` stay."""
    spans = []
    for m in _linkify().match(text) or ():
        if m.schema == "mailto:":
            continue
        if not m.schema and not re.search(r"[/?#]", m.raw) and not m.raw.lower().startswith("www."):
            continue
        spans.append((m.index, m.last_index))
    return spans


def urls_as_code(
    text: str, escape: Callable[[str], str] = lambda t: t, *, escape_code: Callable[[str], str] | None = None
) -> str:
    """`text` with every auto-linkable URL as an inline code span. `escape` applies to the rest,
    `escape_code` (default: `escape`) to the code's content; a backtick inside it becomes '."""
    escape_code = escape if escape_code is None else escape_code
    out: list[str] = []
    at = 0
    for start, end in linkable_spans(text):
        out.append(escape(text[at:start]))
        out.append("`" + escape_code(text[start:end].replace("`", "'")) + "`")
        at = end
    out.append(escape(text[at:]))
    return "".join(out)
