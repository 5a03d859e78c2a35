"""Turn an uploaded file (name + bytes) into a `LoadedDocument`: titled, sectioned, cleaned text.

One entry point, `load_document`. It checks the size first, then the extension, then that the
bytes really are what the name says (magic bytes), then hands the bytes to the format's module.
Everything a user's file can do wrong ends as one of the `DocumentError` family with a message
that names the file and says why, so connectors can show it as is. Nothing here touches a store.

Formats, one module each: `pdf` (pypdf in a time-limited worker process, one section per page),
`docx` (python-docx, headings + paragraphs + tables in body order), `text` (plain text: BOM →
strict UTF-8 → charset-normalizer; Markdown: front matter, ATX headings, fences), `html`
(beautifulsoup4 with html.parser, boilerplate elements removed). `draft` is what they share.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePath

from knowledge.loaders.docx import MAX_DOCX_COMPRESSION_RATIO, MAX_DOCX_ENTRIES, MAX_DOCX_UNCOMPRESSED_BYTES, load_docx
from knowledge.loaders.draft import Draft, clean_text, mb
from knowledge.loaders.html import load_html
from knowledge.loaders.pdf import PdfLimits, load_pdf
from knowledge.loaders.text import decode_text, load_markdown, load_text
from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    LoadedDocument,
    OversizedDocument,
    UnsupportedDocument,
)

__all__ = [
    "MAX_DOCX_COMPRESSION_RATIO",
    "MAX_DOCX_ENTRIES",
    "MAX_DOCX_UNCOMPRESSED_BYTES",
    "PIPELINE_VERSION",
    "SUPPORTED_EXTENSIONS",
    "PdfLimits",
    "check_size",
    "clean_text",
    "content_hash",
    "decode_text",
    "load_document",
]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".pdf", ".docx", ".txt", ".md", ".markdown", ".html", ".htm"}
)

# Bump when loading or chunking changes what a document turns into: it is mixed into
# `content_hash`, so the next upload of an unchanged file re-ingests with the new code.
PIPELINE_VERSION = "loaders-3/chunking-1"

# Magic bytes of formats people upload by mistake under a text or office name.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a zip archive (e.g. DOCX)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)

# Titles some tools write into every file's metadata: not a real title.
# A real title has at least one word of three letters or more.
_NAME_WORD = re.compile(r"[^\W\d_]{3,}")
_PLACEHOLDER_TITLES = {
    "", "untitled", "untitled document", "untitled spreadsheet", "word document", "document",
    "microsoft word document", "title", "no title", "(anonymous)",
}


def load_document(
    name: str,
    data: bytes,
    *,
    max_bytes: int,
    url: str | None = None,
    pdf_limits: PdfLimits = PdfLimits(),
) -> LoadedDocument:
    """Parse `data` (the file called `name`) into sections. Raises a `DocumentError` subclass."""
    # The name is kept as given (a folder ingest may pass "team/guide.md" so two guide.md files
    # stay two documents); the extension and the fallback title come from its last part.
    display = name.strip() or "file"
    base = PurePath(display).name or display
    check_size(display, len(data), max_bytes=max_bytes)
    ext = PurePath(base).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        what = f"'{ext}' files aren't supported" if ext else "the file has no extension"
        raise UnsupportedDocument(display, f"{what}; send PDF, DOCX, TXT, Markdown or HTML")
    if not data.strip():
        raise EmptyDocument(display)
    _check_magic(display, ext, data)

    title_hint: str | None = None
    pages: int | None = None
    draft = Draft()
    try:
        if ext == ".pdf":
            title_hint, pages = load_pdf(display, data, draft, pdf_limits)
        elif ext == ".docx":
            title_hint = load_docx(display, data, draft)
        elif ext == ".txt":
            load_text(decode_text(display, data), draft)
        elif ext in (".md", ".markdown"):
            title_hint = load_markdown(decode_text(display, data), draft)
        else:
            title_hint = load_html(display, data, draft)
    except DocumentError:
        raise
    except RecursionError as exc:  # absurdly nested markup
        raise CorruptDocument(display, "the file is nested too deeply to read") from exc
    except MemoryError as exc:
        raise CorruptDocument(display, "the file expands to more than can be read") from exc

    if not draft.sections:
        detail = (
            "no extractable text (a scanned or image-only file needs OCR first)"
            if ext in (".pdf", ".docx")
            else None
        )
        raise EmptyDocument(display, detail)

    stem = PurePath(base).stem
    title = _usable_title(title_hint) or _usable_title(draft.first_h1) or stem
    return LoadedDocument(
        name=display,
        title=title,
        sections=tuple(draft.sections),
        content_hash=content_hash(data),
        pages=pages,
        url=url,
        warnings=tuple(draft.warnings),
    )


def check_size(name: str, size: int, *, max_bytes: int) -> None:
    """Raise OversizedDocument when `size` bytes is over the limit (callers may check before reading)."""
    if size > max_bytes:
        raise OversizedDocument(name, f"the file is {mb(size)} MB; the limit is {mb(max_bytes)} MB")


def content_hash(data: bytes) -> str:
    """sha256 of the raw bytes, salted with the pipeline version (a code change re-ingests)."""
    h = hashlib.sha256(PIPELINE_VERSION.encode() + b"\0")
    h.update(data)
    return h.hexdigest()


def _usable_title(title: object) -> str | None:
    if not isinstance(title, str):
        return None
    title = " ".join(clean_text(title).split())
    if title.lower().startswith("microsoft word - "):  # Word's PDF printer prefixes the file name
        title = PurePath(title[len("microsoft word - "):]).stem
    if title.lower() in _PLACEHOLDER_TITLES:
        return None
    if not _NAME_WORD.search(title):
        # "0000320193-22-000070" (an EDGAR accession number), "IMG_2041", "12/03": an identifier,
        # not a name a reader would recognise; the file name says more.
        return None
    return title[:300]


def _check_magic(name: str, ext: str, data: bytes) -> None:
    """Refuse bytes that aren't what the extension claims."""
    head = data[:1024]
    if ext == ".pdf":
        # PDF readers accept the header anywhere in the first 1 KiB.
        if b"%PDF-" not in head:
            raise UnsupportedDocument(name, f"this is not a PDF{_looks_like(data)}")
        return
    if ext == ".docx":
        if not data.startswith(b"PK\x03\x04"):
            raise UnsupportedDocument(name, f"this is not a DOCX file{_looks_like(data)}")
        return
    # Text formats: a known binary signature means someone renamed a binary file. UTF-16/32
    # text starts with a BOM and none of the signatures, so it passes.
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            raise UnsupportedDocument(name, f"this is {what}, not a text file")


def _looks_like(data: bytes) -> str:
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            return f" (it looks like {what})"
    return ""
