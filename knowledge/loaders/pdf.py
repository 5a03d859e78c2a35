"""PDF (pypdf): one section per page, split where bookmarks start, under hard limits.

A PDF is a program as much as a document: a few kilobytes can declare a million pages, or make
every page decode one huge shared content stream again. So the parse runs in a worker process
(`knowledge.loaders.workers`) that is killed past `PdfLimits.parse_timeout_s`, and refuses more
than `max_pages` pages or `max_chars` characters of text before doing the work they imply.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass

from knowledge.loaders.draft import Draft
from knowledge.loaders.workers import WorkerCrashed, WorkerPool, WorkerTimeout
from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EncryptedDocument,
    OversizedDocument,
    Section,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdfLimits:
    """How much of a PDF docent will read (defaults = `Settings.pdf_*`). The defaults admit real
    filings with headroom: an 80-page 10-Q has ~250k characters and parses in ≤ 12 s on a busy
    2-core machine."""

    max_pages: int = 1000
    max_chars: int = 4_000_000
    parse_timeout_s: float = 120.0


@dataclass(frozen=True)
class ParsedPdf:
    """What the worker sends back: everything `load_document` needs from the PDF."""

    title: str | None
    pages: int
    sections: tuple[Section, ...]
    warnings: tuple[str, ...]


# pypdf refuses arrays over 100,000 elements to bound memory; real filings have longer ones (the
# structure tree of 2023 Q1 MSFT's 10-Q). In the worker, its time limit bounds the cost instead.
_MAX_ARRAY_ELEMENTS = 1_000_000

# One worker per core at most: parsing is CPU-bound, and more would only compete with the bot.
_WORKERS = WorkerPool(max_workers=min(2, os.cpu_count() or 1), preload=("pypdf", __name__))


def load_pdf(name: str, data: bytes, draft: Draft, limits: PdfLimits) -> tuple[str | None, int]:
    """Parse in a worker under `limits`; add the sections to `draft`; return (title, pages)."""
    try:
        parsed = _WORKERS.run(parse_pdf, name, data, limits.max_pages, limits.max_chars,
                              timeout_s=limits.parse_timeout_s)
    except WorkerTimeout as exc:
        raise OversizedDocument(
            name,
            f"reading the PDF took longer than {limits.parse_timeout_s:g} s, so it was stopped; it is "
            "too complex to read (try splitting it, or printing it to a new PDF)",
        ) from exc
    except WorkerCrashed as exc:
        log.warning("the PDF worker died on %s: %s", name, exc)
        raise CorruptDocument(name, "the PDF is damaged and can't be read") from exc
    draft.sections.extend(parsed.sections)
    draft.warnings.extend(parsed.warnings)
    return parsed.title, parsed.pages


def parse_pdf(name: str, data: bytes, max_pages: int, max_chars: int) -> ParsedPdf:
    """The parse itself (runs in the worker). Raises a `DocumentError` subclass."""
    import pypdf

    with pypdf.apply_configuration(array_maximum_element_count=_MAX_ARRAY_ELEMENTS):
        return _parse_pdf(name, data, max_pages, max_chars)


def _parse_pdf(name: str, data: bytes, max_pages: int, max_chars: int) -> ParsedPdf:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to restrict printing/copying: the empty user
            # password opens them. Anything else needs a password we don't have.
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise EncryptedDocument(
                    name, "the PDF is encrypted with AES, which this server can't decrypt"
                ) from exc
            if not opened:
                raise EncryptedDocument(name)
        # The declared count first: walking a page tree of a million pages is itself the attack.
        _check_pages(name, _declared_pages(reader), max_pages)
        n_pages = len(reader.pages)
        _check_pages(name, n_pages, max_pages)
        title = _pdf_title(reader)
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise EncryptedDocument(name) from exc
    except PdfReadError as exc:
        raise CorruptDocument(name, f"the PDF is damaged ({exc})") from exc
    except Exception as exc:  # pypdf raises many plain exception types on malformed input
        log.info("pypdf failed to open %s: %r", name, exc)
        raise CorruptDocument(name, "the PDF is damaged and can't be read") from exc

    draft = Draft()
    headings = _pdf_outline_by_page(reader)
    starts_on = _pdf_bookmarks_starting_on(reader)
    failed: list[int] = []
    blank = 0
    chars = 0
    for index in range(n_pages):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # one bad page shouldn't lose the rest
            log.info("pypdf failed on page %d of %s: %r", index + 1, name, exc)
            failed.append(index + 1)
            continue
        chars += len(text)
        if chars > max_chars:
            raise OversizedDocument(
                name, f"the PDF holds more than {max_chars:,} characters of text (the limit); split it into smaller files"
            )
        if not text.strip():
            blank += 1
            continue
        for segment, heading_path in _split_at_bookmarks(text, headings.get(index + 1, ()), starts_on.get(index + 1, [])):
            draft.add(segment, page=index + 1, heading_path=heading_path)
    if failed and not draft.sections:
        raise CorruptDocument(name, "the PDF is damaged: no page could be read")
    if failed:
        draft.warnings.append(f"{len(failed)} page(s) couldn't be read: {_page_list(failed)}")
    if blank and draft.sections:
        draft.warnings.append(f"{blank} page(s) have no extractable text (scanned images need OCR)")
    return ParsedPdf(title=title, pages=n_pages, sections=tuple(draft.sections), warnings=tuple(draft.warnings))


def _declared_pages(reader) -> int:
    try:
        count = reader.root_object["/Pages"]["/Count"]
    except Exception:  # a broken page tree: let pypdf's own walk decide
        return 0
    return count if isinstance(count, int) else 0


def _check_pages(name: str, pages: int, max_pages: int) -> None:
    if pages > max_pages:
        raise OversizedDocument(name, f"the PDF has {pages:,} pages; the limit is {max_pages:,}")


def _page_list(pages: list[int]) -> str:
    shown = ", ".join(map(str, pages[:10]))
    return shown + (" …" if len(pages) > 10 else "")


def _pdf_title(reader) -> str | None:
    try:
        meta = reader.metadata
        return meta.title if meta else None
    except Exception:  # broken info dictionary: the title is optional
        return None


def _split_at_bookmarks(
    text: str, carried: tuple[str, ...], starting: list[tuple[str, ...]]
) -> list[tuple[str, tuple[str, ...]]]:
    """Split a page's text where the bookmarks that start on it appear, so each part carries its
    own heading: a section starting mid-page isn't labelled with the previous one."""
    parts: list[tuple[str, tuple[str, ...]]] = []
    cursor, current = 0, carried
    for path in starting:
        at = text.find(path[-1], cursor) if path else -1
        if at < 0:
            continue  # title not found in the text layer: keep the page-level label
        if text[cursor:at].strip():
            parts.append((text[cursor:at], current))
        cursor, current = at, path
    if text[cursor:].strip():
        parts.append((text[cursor:], current))
    return parts or [(text, carried)]


def _pdf_bookmarks_starting_on(reader) -> dict[int, list[tuple[str, ...]]]:
    """Bookmarks' heading paths by the page they point to, in outline order."""
    out: dict[int, list[tuple[str, ...]]] = {}
    for page, path in _pdf_bookmark_starts(reader):
        out.setdefault(page, []).append(path)
    return out


def _pdf_bookmark_starts(reader) -> list[tuple[int, tuple[str, ...]]]:
    starts: list[tuple[int, tuple[str, ...]]] = []

    def walk(items, parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if not title:
                continue
            last = parents + (title,)
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            if page is not None and page >= 0:
                starts.append((page + 1, last))

    try:
        walk(reader.outline, ())
    except Exception:  # outlines are optional and often broken
        return []
    starts.sort(key=lambda s: s[0])  # stable: same-page entries keep outline order
    return starts


def _pdf_outline_by_page(reader) -> dict[int, tuple[str, ...]]:
    """Heading path in force at the top of each page, from the PDF's bookmarks (if any)."""
    starts = _pdf_bookmark_starts(reader)
    if not starts:
        return {}
    by_page: dict[int, tuple[str, ...]] = {}
    for page, path in starts:
        by_page[page] = path  # the last heading starting on a page wins for the next pages
    result: dict[int, tuple[str, ...]] = {}
    current: tuple[str, ...] = ()
    for page in range(1, len(reader.pages) + 1):
        # A page is labelled with the heading in force where it *starts*: the one carried in
        # from before, or the first one that starts on it when nothing was in force yet.
        if not current:
            first_here = next((p for pg, p in starts if pg == page), None)
            if first_here:
                current = first_here
        result[page] = current
        if page in by_page:
            current = by_page[page]
    return {p: path for p, path in result.items() if path}


