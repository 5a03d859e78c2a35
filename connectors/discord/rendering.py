"""An `Answer` as Discord embeds, within Discord's limits, never cutting a citation in two.

Limits (Discord API docs, "Embed Limits" and "Create Message"): description 4096 characters,
field value 1024, field name 256, title 256, footer 2048, 25 fields per embed, 10 embeds per
message, 6000 characters across all embeds of one message, message content 2000.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import discord

from bot.types import Answer, Outcome, Source
from connectors.autolinks import urls_as_code

if TYPE_CHECKING:
    from admin.gaps import GapCluster, GapsReport

DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
FIELD_NAME_LIMIT = 256
TITLE_LIMIT = 256
FOOTER_LIMIT = 2048
FIELDS_PER_EMBED = 25
EMBEDS_PER_MESSAGE = 10
MESSAGE_EMBED_TOTAL = 6000
CONTENT_LIMIT = 2000

_COLOURS = {
    Outcome.answered: discord.Colour.blurple(),
    Outcome.abstained: discord.Colour.light_grey(),
    Outcome.rate_limited: discord.Colour.orange(),
    Outcome.capped: discord.Colour.orange(),
    Outcome.blocked: discord.Colour.red(),
    Outcome.error: discord.Colour.red(),
}

# Spans a split must never fall inside: citations like [3] or [1, 2], and Markdown links.
_UNBREAKABLE = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\](?:\([^)\s]*\))?|\[[^\]\n]{1,200}\]\([^)\s]+\)")
# Preferred break points, best first: paragraph, line, sentence end, word.
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _UNBREAKABLE.finditer(text)]


def _inside_span(pos: int, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    for start, end in spans:
        if start < pos < end:
            return start, end
    return None


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` characters at natural boundaries.

    Never splits inside a `[n]` citation or a Markdown link; a single word longer than `limit`
    is the only thing ever cut mid-word (and even then not inside a citation).
    """
    if limit < 16:
        raise ValueError("limit too small to split sensibly")
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        spans = _protected_spans(rest)
        cut = -1
        for sep in _BREAKS:
            # Search the window for the last separator whose cut point is not inside a protected span.
            window_end = limit
            while True:
                idx = rest.rfind(sep, 0, window_end)
                if idx <= 0:
                    break
                point = idx + len(sep.rstrip()) if sep.strip() else idx
                if point <= limit and _inside_span(point, spans) is None:
                    cut = point
                    break
                window_end = idx
            if cut > 0:
                break
        if cut <= 0:  # no boundary at all: hard cut, moved back before any citation it would split
            cut = limit
            span = _inside_span(cut, spans)
            if span is not None and span[0] > 0:
                cut = span[0]
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def document_text(text: str) -> str:
    """Text taken from a document or a file name (a title, a heading) as Discord Markdown that
    formats, links and mentions nothing: Markdown and mentions escaped, URLs shown as code."""
    return discord.utils.escape_mentions(
        urls_as_code(text, discord.utils.escape_markdown, escape_code=lambda code: code)
    )


def source_line(source: Source) -> str:
    """`[n] Title (p. 3, Section)`, linked when the source has a URL; URLs in the title or
    headings are shown as code (Discord would auto-link them)."""
    label = urls_as_code(source.label.replace("[", "(").replace("]", ")"))
    if source.url:
        label = f"[{label}]({source.url})"
    return f"`[{source.n}]` {label}"


def pack_lines(lines: Iterable[str], limit: int) -> list[str]:
    """Greedily pack whole lines into values of at most `limit` characters."""
    values: list[str] = []
    current = ""
    for line in lines:
        for part in split_text(line, limit) if len(line) > limit else [line]:
            candidate = f"{current}\n{part}" if current else part
            if len(candidate) > limit:
                values.append(current)
                current = part
            else:
                current = candidate
    if current:
        values.append(current)
    return values


def related_line(source: Source) -> str:
    """A passage offered beside an abstention: its label (linked when it has a URL), no `[n]` —
    the answer cites nothing, and a number would read as support."""
    label = urls_as_code(source.label.replace("[", "(").replace("]", ")"))
    return f"• [{label}]({source.url})" if source.url else f"• {label}"


def footer_text(answer: Answer) -> str:
    bits = [f"{answer.usage.latency_ms / 1000:.1f} s"]
    if answer.usage.model:
        bits.append(answer.usage.model)
    if answer.usage.cache_hit:
        bits.append("cached")
    return " · ".join(bits)[:FOOTER_LIMIT]


RELATED_FIELD = "Related (may help; it doesn't answer this)"


def _add_fields(embeds: list[discord.Embed], name: str, lines: Iterable[str], colour: discord.Colour) -> None:
    """Lines as fields called `name` (then "… (cont.)") under the last embed, adding embeds as needed."""
    target = embeds[-1]
    for i, value in enumerate(pack_lines(lines, FIELD_VALUE_LIMIT)):
        # Stay well inside the 6000 total of a message: start a fresh embed when this one is full.
        full = len(target) + len(value) + len(name) + 12 > MESSAGE_EMBED_TOTAL - 200
        if len(target.fields) >= FIELDS_PER_EMBED or full:
            target = discord.Embed(colour=colour)
            embeds.append(target)
        target.add_field(name=name if i == 0 else f"{name} (cont.)", value=value, inline=False)


def render_answer(answer: Answer, *, question: str | None = None, link: str | None = None) -> list[discord.Embed]:
    """The answer as one or more embeds: text pages, then the sources (or, on an abstention, the
    related passages), footer on the last one. `link` makes the question title a link (e.g. to
    the message a question was asked about)."""
    colour = _COLOURS.get(answer.outcome, discord.Colour.blurple())
    body = answer.text.strip() or "(no answer)"
    if answer.notices:
        body = "\n".join(f"-# {n}" for n in answer.notices) + "\n\n" + body
    pages = split_text(body, DESCRIPTION_LIMIT)
    embeds = [discord.Embed(description=page, colour=colour) for page in pages]
    if question:
        title = question.strip().replace("\n", " ")
        embeds[0].title = title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"
        embeds[0].url = link

    _add_fields(embeds, "Sources", (source_line(s) for s in answer.sources), colour)
    if answer.outcome is Outcome.abstained and answer.related:
        _add_fields(embeds, RELATED_FIELD, (related_line(s) for s in answer.related), colour)

    embeds[-1].set_footer(text=footer_text(answer))
    return embeds


def progress_embed(partial_text: str) -> discord.Embed:
    """A streaming answer so far (first page only, cut at a safe boundary)."""
    pages = split_text(partial_text, DESCRIPTION_LIMIT - 2) if partial_text.strip() else ["…"]
    text = pages[0] + (" …" if len(pages) > 1 else " ▌")
    embed = discord.Embed(description=text, colour=discord.Colour.dark_grey())
    embed.set_footer(text="writing…")
    return embed


def group_into_messages(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages of ≤ 10 embeds and ≤ 6000 characters in total."""
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    total = 0
    for embed in embeds:
        size = len(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or total + size > MESSAGE_EMBED_TOTAL):
            messages.append(current)
            current, total = [], 0
        current.append(embed)
        total += size
    if current:
        messages.append(current)
    return messages


def split_content(text: str) -> list[str]:
    """Plain message content in ≤ 2000-character pieces (for notices and lists)."""
    return split_text(text, CONTENT_LIMIT)


# --- coverage gaps -------------------------------------------------------------------------------

MAX_GAP_GROUPS = 25  # the rest is one line; `docent gaps --json` has them all


def _quoted(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return "“" + document_text(text if len(text) <= limit else text[: limit - 1] + "…") + "”"


def gap_block(n: int, cluster: "GapCluster") -> str:
    """One group of a gaps report: count, the representative question, why, where, who, what they said."""
    why = ", ".join(bit for bit in (f"{cluster.abstained} abstained" if cluster.abstained else "",
                                    f"{cluster.unhelpful} 👎" if cluster.unhelpful else "") if bit)
    channels = ", ".join(f"{f'<#{ch}>' if ch else 'DM'} ×{k}" for ch, k in cluster.channels[:5])
    lines = [f"**{n}. {cluster.requests}×** {_quoted(cluster.representative)} — {why}", f"-# {channels}"]
    others = [q for q in cluster.questions if q != cluster.representative][:3]
    if others:
        lines.append("-# also: " + "; ".join(_quoted(q, 120) for q in others))
    for comment in cluster.comments[:3]:
        lines.append(f"-# 💬 {_quoted(comment, 200)}")
    if cluster.askers:
        lines.append("-# asked by " + ", ".join(f"<@{u}>" for u in cluster.askers[:10]))
    return "\n".join(lines)


def render_gaps(report: "GapsReport") -> list[discord.Embed]:
    """A coverage-gaps report as embeds (admins only: it names who asked, without pinging anyone)."""
    where = f" in <#{report.channel}>" if report.channel else ""
    head = (f"{report.requests} question(s){where} docent abstained on or that got 👎 in the last "
            f"{report.days} days, in {len(report.clusters)} group(s) — most asked first.")
    if report.hashed:
        head += (f"\n⚠️ {report.hashed} more are stored hashed (`DOCENT_STORE_QUESTION=hash`): coverage gaps "
                 "need redacted questions.")
    if not report.clusters and not report.hashed:
        head += "\nNothing to add: every question was answered without a 👎."
    blocks = [head] + [gap_block(i, c) for i, c in enumerate(report.clusters[:MAX_GAP_GROUPS], 1)]
    rest = report.clusters[MAX_GAP_GROUPS:]
    if rest:
        blocks.append(f"-# … and {len(rest)} more group(s) with {sum(c.requests for c in rest)} question(s): "
                      "`docent gaps --json` lists them all.")
    values = pack_lines(blocks, DESCRIPTION_LIMIT)
    colour = discord.Colour.blurple()
    return [discord.Embed(title="Coverage gaps" if i == 0 else None, description=v, colour=colour)
            for i, v in enumerate(values)]
