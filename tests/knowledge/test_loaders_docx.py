"""DOCX loading: real sample files, documents and zip bombs built here."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from knowledge.loaders import MAX_DOCX_UNCOMPRESSED_BYTES, load_document
from knowledge.types import CorruptDocument, EmptyDocument
from tests.knowledge.conftest import LIMIT, MB, full_text, load_sample


def test_docx_tables_appear_in_text_in_document_order(samples: Path):
    doc = load_sample(samples, "unstructured-docx-tables.docx")
    text = full_text(doc)
    assert "Header Col 1 | Header Col 2" in text
    assert "Lorem ipsum | A link example" in text
    # The caption paragraph comes right before its table, and the second table after it.
    assert text.index("Simple uniform table") < text.index("Header Col 1") < text.index("Nested Table")
    # The nested table's cells are read too, inside the outer row.
    assert "a | >b< | c" in text


def test_docx_headings_build_the_heading_path(samples: Path):
    doc = load_sample(samples, "18f-project-readme-template.docx")
    # Core properties say "Word Document" (a placeholder); the Title-style paragraph wins.
    assert doc.title.startswith("Project README")
    paths = [s.heading_path for s in doc.sections]
    assert any(p[-2:] == ("Partner details", "Key contacts") for p in paths)
    key_contacts = next(s for s in doc.sections if s.heading_path[-1:] == ("Key contacts",))
    assert "Name | Title | Organization | Contact | Notes" in key_contacts.text


def test_zip_that_is_not_a_word_document_is_corrupt():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hello")
    with pytest.raises(CorruptDocument, match="not a Word document"):
        load_document("notword.docx", buf.getvalue(), max_bytes=LIMIT)


def test_truncated_docx_is_corrupt(samples: Path):
    data = (samples / "unstructured-docx-tables.docx").read_bytes()
    with pytest.raises(CorruptDocument):
        load_document("cut.docx", data[: len(data) // 2], max_bytes=LIMIT)


def _zip_bomb_docx(member_bytes: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        # Stream zeros in so the test never holds the expanded member in memory.
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * MB
            for _ in range(member_bytes // MB):
                member.write(block)
    return buf.getvalue()


def test_docx_zip_bomb_by_compression_ratio_is_refused_before_parsing(monkeypatch):
    data = _zip_bomb_docx(20 * MB)  # ~20 KB on disk: ratio ~1000
    assert len(data) < MB

    def must_not_parse(*args, **kwargs):
        raise AssertionError("python-docx must not be reached")

    import docx

    monkeypatch.setattr(docx, "Document", must_not_parse)
    with pytest.raises(CorruptDocument, match="zip bomb"):
        load_document("bomb.docx", data, max_bytes=LIMIT)


def test_docx_expanding_past_the_total_limit_is_refused():
    data = _zip_bomb_docx(MAX_DOCX_UNCOMPRESSED_BYTES + MB)
    with pytest.raises(CorruptDocument, match="expands to"):
        load_document("huge.docx", data, max_bytes=LIMIT)


def test_docx_with_no_text_is_empty():
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    with pytest.raises(EmptyDocument, match="no extractable text"):
        load_document("blank.docx", buf.getvalue(), max_bytes=LIMIT)


def test_docx_built_here_keeps_headings_paragraphs_and_tables_in_order():
    import docx

    d = docx.Document()
    d.core_properties.title = "Runbook"
    d.add_heading("Deploy", level=1)
    d.add_paragraph("Run the pipeline.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Env", "URL"
    table.cell(1, 0).text, table.cell(1, 1).text = "prod", "https://prod"
    d.add_paragraph("Then check the dashboard.")
    d.add_heading("Rollback", level=2)
    d.add_paragraph("Revert the release.")
    buf = io.BytesIO()
    d.save(buf)
    doc = load_document("runbook.docx", buf.getvalue(), max_bytes=LIMIT)
    assert doc.title == "Runbook"
    assert doc.sections[0].heading_path == ("Deploy",)
    assert doc.sections[0].text == "Run the pipeline.\n\nEnv | URL\nprod | https://prod\n\nThen check the dashboard."
    assert doc.sections[1].heading_path == ("Deploy", "Rollback")
