"""The model's Markdown for Slack's `markdown` block and its native streams (chat.*Stream).

Both take standard Markdown and Slack renders it, so the answer keeps the model's own Markdown —
with Slack's three control characters escaped (`&` `<` `>`, as Slack requires of any text it is
sent): an `<@U…>`, `<!here>`, `<#C…>` or `<https://…|…>` in model or document text reaches
Slack as text, never as a mention, a broadcast or a link. Links the output check let through
(the cited sources' URLs) stay Markdown links. Escaping characters one by one is
prefix-stable — the escape of a partial answer is the start of the escape of the whole — so a
stream can append escaped deltas and end exactly where the full answer's block would.

`markdown_pieces` cuts a long answer between top-level blocks (paragraphs, lists, code
fences …, found by markdown-it-py), never inside a code fence, a link or a citation, so each
message's `markdown` blocks stay within Slack's 12,000-character budget.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from connectors.slack.mrkdwn import escape, pack_code_lines, pack_units, split_text

__all__ = ["escape", "markdown_pieces", "slack_markdown"]

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def slack_markdown(markdown: str) -> str:
    """The answer as Slack-safe Markdown (see the module docstring)."""
    return escape(markdown or "")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])


def _top_level_blocks(markdown: str) -> list[tuple[str, bool]]:
    """(text, is_code) of each top-level block, cut where the parser says the next one starts —
    so lines no block claims (a link reference definition …) stay with the block before them."""
    lines = markdown.split("\n")
    starts: list[tuple[int, bool]] = []
    for token in _parser().parse(markdown):
        if token.level == 0 and token.map is not None and token.nesting != -1:
            starts.append((token.map[0], token.type in ("fence", "code_block")))
    if not starts or starts[0][0] != 0:
        starts.insert(0, (0, False))
    blocks: list[tuple[str, bool]] = []
    for i, (start, is_code) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(lines)
        text = "\n".join(lines[start:end]).strip("\n")
        if text.strip():
            blocks.append((text, is_code))
    return blocks


def _split_fence(block: str, limit: int) -> list[str]:
    """A fenced code block longer than `limit` as several complete fenced blocks, cut at line ends."""
    lines = block.split("\n")
    opening = lines[0] if _FENCE.match(lines[0]) else "```"
    closing = _FENCE.match(opening).group(1) if _FENCE.match(opening) else "```"  # type: ignore[union-attr]
    body = lines[1:-1] if _FENCE.match(lines[-1] or "") and len(lines) > 1 else lines[1:]
    pieces = pack_code_lines(body, limit - len(opening) - len(closing) - 2)
    return [f"{opening}\n{p}\n{closing}" for p in pieces]


def markdown_pieces(markdown: str, limit: int) -> list[str]:
    """Slack-safe Markdown of the answer in pieces of at most `limit` characters."""
    units: list[str] = []
    for raw, is_code in _top_level_blocks(markdown or ""):
        text = slack_markdown(raw)
        if len(text) <= limit:
            units.append(text)
        elif is_code and _FENCE.match(text.split("\n", 1)[0]):
            units.extend(_split_fence(text, limit))
        else:
            units.extend(split_text(text, limit))
    return pack_units(units, limit)
