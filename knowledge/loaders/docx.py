"""DOCX (python-docx): headings, paragraphs and tables in body order, after zip-bomb checks on
the zip directory (nothing is decompressed before they pass)."""

from __future__ import annotations

import io
import logging
import re
import zipfile

from knowledge.loaders.draft import Draft, mb
from knowledge.types import CorruptDocument, DocumentError

log = logging.getLogger(__name__)

MAX_DOCX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 100
MAX_DOCX_ENTRIES = 10_000
# Small XML parts can compress extremely well and are harmless: the ratio check starts here.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
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
            f"the DOCX expands to {mb(total)} MB (limit {mb(MAX_DOCX_UNCOMPRESSED_BYTES)} MB); "
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


def load_docx(name: str, data: bytes, draft: Draft) -> str | None:
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


