"""PDF (pypdf): one section per page, split where bookmarks start (from the PDF's outline)."""

from __future__ import annotations

import io
import logging

from knowledge.loaders.draft import Draft
from knowledge.types import CorruptDocument, DocumentError, EncryptedDocument

log = logging.getLogger(__name__)


def load_pdf(name: str, data: bytes, draft: Draft) -> tuple[str | None, int]:
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
        n_pages = len(reader.pages)
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

    headings = _pdf_outline_by_page(reader)
    starts_on = _pdf_bookmarks_starting_on(reader)
    failed: list[int] = []
    blank = 0
    for index in range(n_pages):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # one bad page shouldn't lose the rest
            log.info("pypdf failed on page %d of %s: %r", index + 1, name, exc)
            failed.append(index + 1)
            continue
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
    return title, n_pages


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


