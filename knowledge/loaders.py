"""Turn an uploaded file (name + bytes) into a `LoadedDocument`: titled, sectioned, cleaned text.

One entry point, `load_document`. It checks the size first, then the extension, then that the
bytes really are what the name says (magic bytes), then parses. Everything a user's file can do
wrong ends as one of the `DocumentError` family with a message that names the file and says why,
so connectors can show it as is. Nothing here touches a store.

Formats: PDF (pypdf, one section per page), DOCX (python-docx, headings + paragraphs + tables in
body order), plain text (BOM → strict UTF-8 → charset-normalizer), Markdown (front matter, ATX
headings, fences), HTML (beautifulsoup4 with html.parser, boilerplate elements removed).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath

from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    EncryptedDocument,
    LoadedDocument,
    OversizedDocument,
    Section,
    UnsupportedDocument,
)

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".pdf", ".docx", ".txt", ".md", ".markdown", ".html", ".htm"}
)

# Bump when loading or chunking changes what a document turns into: it is mixed into
# `content_hash`, so the next upload of an unchanged file re-ingests with the new code.
PIPELINE_VERSION = "loaders-2/chunking-1"

# DOCX (zip) limits, checked from the zip directory before anything is decompressed.
MAX_DOCX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 100
MAX_DOCX_ENTRIES = 10_000
# Small XML parts can compress extremely well and are harmless: the ratio check starts here.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024

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
_PLACEHOLDER_TITLES = {
    "", "untitled", "untitled document", "untitled spreadsheet", "word document", "document",
    "microsoft word document", "title", "no title", "(anonymous)",
}

# Invisible characters that carry no meaning in prose and break matching. Zero-width joiners
# (U+200C/U+200D) stay: Persian, Indic scripts and emoji sequences need them.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad\u180e"), None)
_SPACE_LIKE = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000"), " ")
# C0 controls except tab/newline (carriage returns are normalised before), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass
class _Draft:
    """Sections gathered while parsing, before they are frozen into a LoadedDocument."""

    sections: list[Section] = field(default_factory=list)
    first_h1: str | None = None
    warnings: list[str] = field(default_factory=list)

    def enter_heading(self, path: list[tuple[int, str]], level: int, heading: str) -> None:
        """A heading at `level` closes deeper-or-equal open headings and opens itself in `path`."""
        while path and path[-1][0] >= level:
            path.pop()
        if heading:
            path.append((level, heading))
            if level <= 1 and self.first_h1 is None:
                self.first_h1 = heading

    def add(self, text: str, *, page: int | None = None, heading_path: tuple[str, ...] = ()) -> None:
        text = clean_text(text).strip("\n")
        if text.strip():
            self.sections.append(Section(text=text, page=page, heading_path=heading_path))


def load_document(name: str, data: bytes, *, max_bytes: int, url: str | None = None) -> LoadedDocument:
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
    draft = _Draft()
    try:
        if ext == ".pdf":
            title_hint, pages = _load_pdf(display, data, draft)
        elif ext == ".docx":
            title_hint = _load_docx(display, data, draft)
        elif ext == ".txt":
            _load_text(decode_text(display, data), draft)
        elif ext in (".md", ".markdown"):
            title_hint = _load_markdown(decode_text(display, data), draft)
        else:
            title_hint = _load_html(display, data, draft)
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
        raise OversizedDocument(name, f"the file is {_mb(size)} MB; the limit is {_mb(max_bytes)} MB")


def content_hash(data: bytes) -> str:
    """sha256 of the raw bytes, salted with the pipeline version (a code change re-ingests)."""
    h = hashlib.sha256(PIPELINE_VERSION.encode() + b"\0")
    h.update(data)
    return h.hexdigest()


def clean_text(text: str) -> str:
    """Normalise line ends and Unicode; drop NULs, control and invisible characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_INVISIBLE).translate(_SPACE_LIKE)
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _usable_title(title: object) -> str | None:
    if not isinstance(title, str):
        return None
    title = " ".join(clean_text(title).split())
    if title.lower().startswith("microsoft word - "):  # Word's PDF printer prefixes the file name
        title = PurePath(title[len("microsoft word - "):]).stem
    if title.lower() in _PLACEHOLDER_TITLES:
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


# ---------------------------------------------------------------------------------------------
# Text decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Encodings that browsers treat as windows-1252 (the WHATWG encoding standard does the same).
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "ascii", "us-ascii", "windows-1252", "cp1252"}


def decode_text(name: str, data: bytes, declared: str | None = None) -> str:
    """Bytes of a text file → str: BOM, declared charset, strict UTF-8, then detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise CorruptDocument(name, f"the text isn't valid {encoding.upper()}") from exc
    if declared:
        encoding = "cp1252" if declared.lower() in _AS_CP1252 else declared
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            log.info("declared charset %r doesn't decode %s; detecting", declared, name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _detect_and_decode(name, data)
    if "\x00" in text and _binary_looking(text):
        # ASCII-range UTF-16 without a BOM is valid UTF-8 full of NULs: let detection decide.
        text = _detect_and_decode(name, data)
        if _binary_looking(text):
            raise UnsupportedDocument(name, "this looks like a binary file, not text")
    return text


def _detect_and_decode(name: str, data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise UnsupportedDocument(name, "this looks like a binary file, not text")
    # charset-normalizer often ranks cp1250 above cp1252 for Western European text when the
    # two decode equally cleanly; cp1252 is by far the more common legacy encoding, so among
    # the cleanest candidates prefer one that cp1252 explains.
    least_chaos = min(m.chaos for m in matches)
    cleanest = [m for m in matches if m.chaos <= least_chaos + 1e-9]
    for m in cleanest:
        if "cp1252" in m.could_be_from_charset:
            return data.decode("cp1252", errors="replace")
    best = max(cleanest, key=lambda m: m.coherence)
    if best.chaos > 0.5:
        raise UnsupportedDocument(name, "this looks like a binary file, not text")
    return str(best)


def _binary_looking(text: str) -> bool:
    sample = text[:4096]
    controls = sum(1 for ch in sample if ch == "\x00" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    # Real text may carry a few stray control characters (they are stripped); binaries carry many.
    return controls > max(4, len(sample) // 10)


# ---------------------------------------------------------------------------------------------
# Plain text and Markdown

def _load_text(text: str, draft: _Draft) -> None:
    draft.add(text)


_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _load_markdown(text: str, draft: _Draft) -> str | None:
    title: str | None = None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _FRONT_MATTER.match(text)
    if m:
        title = _front_matter_title(m.group(1) or "")
        text = text[m.end():]

    path: list[tuple[int, str]] = []  # (level, heading) from the outermost in
    lines: list[str] = []
    fence: str | None = None  # the opening fence while inside a code block

    def flush() -> None:
        draft.add("\n".join(lines), heading_path=tuple(h for _, h in path))
        lines.clear()

    for line in text.split("\n"):
        if fence is not None:
            lines.append(line)
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            continue
        f = _FENCE.match(line)
        if f:
            fence = f.group(1)
            lines.append(line)
            continue
        h = _ATX_HEADING.match(line)
        if h:
            heading = _inline_markdown_to_text(h.group(2) or "")
            flush()
            draft.enter_heading(path, len(h.group(1)), heading)
            continue
        lines.append(line)
    flush()
    if not draft.sections and path:
        # Only headings, no body: the headings are the text.
        draft.add("\n".join(h for _, h in path))
    return title


def _front_matter_title(block: str) -> str | None:
    import yaml

    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError:
        return None
    if isinstance(meta, dict):
        title = meta.get("title")
        if isinstance(title, (str, int, float)):
            return str(title)
    return None


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(.+?)\1")


def _inline_markdown_to_text(s: str) -> str:
    s = _MD_LINK.sub(r"\1", s)
    s = _MD_EMPHASIS.sub(r"\2", s)
    return " ".join(s.split())


# ---------------------------------------------------------------------------------------------
# PDF

def _load_pdf(name: str, data: bytes, draft: _Draft) -> tuple[str | None, int]:
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


# ---------------------------------------------------------------------------------------------
# DOCX

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)


def _check_zip(name: str, data: bytes) -> None:
    """Refuse zip bombs from the central directory, before decompressing anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise CorruptDocument(name, "the DOCX file is damaged (not a valid zip)") from exc
    if len(infos) > MAX_DOCX_ENTRIES:
        raise CorruptDocument(name, f"the DOCX holds {len(infos)} parts; refusing it as unsafe")
    total = sum(i.file_size for i in infos)
    if total > MAX_DOCX_UNCOMPRESSED_BYTES:
        raise CorruptDocument(
            name,
            f"the DOCX expands to {_mb(total)} MB (limit {_mb(MAX_DOCX_UNCOMPRESSED_BYTES)} MB); "
            "refusing it as unsafe",
        )
    for info in infos:
        if info.file_size >= _RATIO_CHECK_MIN_BYTES and (
            info.file_size > MAX_DOCX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise CorruptDocument(
                name, "the DOCX is compressed suspiciously well (a zip bomb?); refusing it as unsafe"
            )
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        raise CorruptDocument(name, "this zip file is not a Word document")


def _load_docx(name: str, data: bytes, draft: _Draft) -> str | None:
    _check_zip(name, data)
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise CorruptDocument(name, "the DOCX file is damaged or not a Word document") from exc
    except Exception as exc:  # lxml / python-docx raise assorted types on malformed parts
        log.info("python-docx failed to open %s: %r", name, exc)
        raise CorruptDocument(name, "the DOCX file is damaged and can't be read") from exc

    try:
        core_title = document.core_properties.title
    except Exception:
        core_title = None

    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        draft.add("\n\n".join(lines), heading_path=tuple(h for _, h in path))
        lines.clear()

    try:
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                table_text = _docx_table_text(block)
                if table_text:
                    lines.append(table_text)
                continue
            if not isinstance(block, Paragraph):
                continue
            text = block.text.strip()
            level = _docx_heading_level(block)
            if level is not None and text:
                heading = " ".join(text.split())
                flush()
                # Level 0 is the "Title" style: the document's title, above every heading.
                draft.enter_heading(path, level, heading)
                continue
            if text:
                lines.append(text)
        flush()
    except DocumentError:
        raise
    except Exception as exc:
        log.info("python-docx failed while reading %s: %r", name, exc)
        raise CorruptDocument(name, "the DOCX file is damaged and can't be read") from exc
    return core_title


def _docx_heading_level(paragraph) -> int | None:
    """0 for the Title style, N for "Heading N", else None."""
    try:
        style = paragraph.style
    except Exception:
        return None
    while style is not None:  # custom styles based on a heading style count as that heading
        style_name = (style.name or "").strip()
        if style_name.lower() == "title":
            return 0
        m = _HEADING_STYLE.match(style_name)
        if m:
            return int(m.group(1))
        style = getattr(style, "base_style", None)
    return None


def _docx_table_text(table, depth: int = 0) -> str:
    """Rows as ' | '-joined cells; merged cells once; nested tables inline."""
    from docx.table import Table

    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a horizontally merged cell repeats
                continue
            seen.add(id(cell._tc))
            parts: list[str] = []
            for item in cell.iter_inner_content():
                if isinstance(item, Table):
                    if depth < 5:
                        nested = _docx_table_text(item, depth + 1)
                        if nested:
                            parts.append(nested.replace("\n", " / "))
                elif item.text.strip():
                    parts.append(" ".join(item.text.split()))
            cells.append(" ".join(parts))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# HTML

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


def _load_html(name: str, data: bytes, draft: _Draft) -> str | None:
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


def _walk_html(soup, draft: _Draft) -> None:
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
