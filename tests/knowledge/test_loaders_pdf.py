"""PDF loading: real sample files, PDFs built here (encrypted, blank, damaged)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from knowledge.loaders import load_document
from knowledge.types import CorruptDocument, EmptyDocument, EncryptedDocument
from tests.knowledge.conftest import LIMIT, full_text, load_sample


def test_password_pdfs_really_need_a_password(samples: Path):
    # The empty password does not open them (checked with pypdf directly), so refusing is right.
    import pypdf

    for name in ("pypdf-libreoffice-writer-password.pdf", "unstructured-password.pdf"):
        reader = pypdf.PdfReader(samples / name)
        assert reader.is_encrypted
        assert not reader.decrypt("")
        with pytest.raises(EncryptedDocument, match="password"):
            load_sample(samples, name)


def test_pdf_has_one_section_per_page_with_1_based_pages(samples: Path):
    doc = load_sample(samples, "pypdf-pdflatex-4-pages.pdf")
    assert doc.pages == 4
    assert [s.page for s in doc.sections] == [1, 2, 3, 4]
    assert "Hello, here is some text without a meaning" in doc.sections[0].text


def test_pdf_title_comes_from_metadata_and_falls_back_to_the_stem(samples: Path):
    assert load_sample(samples, "pypdf-google-doc-document.pdf").title == "PDF Example Document"
    assert load_sample(samples, "pypdf-minimal-document.pdf").title == "pypdf-minimal-document"
    # "Untitled spreadsheet" is a placeholder, not a title.
    assert load_sample(samples, "unstructured-all-number-table.pdf").title == "unstructured-all-number-table"


def test_rotated_pdf_page_still_gives_text(samples: Path):
    doc = load_sample(samples, "unstructured-rotated-page-90.pdf")
    assert "Hello World Test Text" in full_text(doc)


def test_arabic_pdf_keeps_its_script(samples: Path):
    text = full_text(load_sample(samples, "pypdf-habibi.pdf"))
    assert "habibi" in text
    assert any("\u0600" <= ch <= "\u06ff" for ch in text)


def _minimal_pdf(samples: Path) -> bytes:
    return (samples / "pypdf-pdflatex-4-pages.pdf").read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.02])
def test_truncated_pdf_is_corrupt(samples: Path, keep: float):
    data = _minimal_pdf(samples)
    with pytest.raises(CorruptDocument, match="damaged"):
        load_document("cut.pdf", data[: int(len(data) * keep)], max_bytes=LIMIT)


def test_pdf_magic_with_garbage_is_corrupt():
    with pytest.raises(CorruptDocument):
        load_document("fake.pdf", b"%PDF-1.7\n" + os.urandom(2048), max_bytes=LIMIT)


def test_pdf_without_text_is_empty():
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(EmptyDocument, match="no extractable text"):
        load_document("scan.pdf", buf.getvalue(), max_bytes=LIMIT)


def test_pdf_with_some_blank_pages_warns(samples: Path):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=samples / "pypdf-minimal-document.pdf")
    writer.add_blank_page(width=200, height=200)
    buf = io.BytesIO()
    writer.write(buf)
    doc = load_document("mixed.pdf", buf.getvalue(), max_bytes=LIMIT)
    assert doc.pages == 2 and [s.page for s in doc.sections] == [1]
    assert any("no extractable text" in w for w in doc.warnings)


def test_pdf_encrypted_with_empty_user_password_opens(samples: Path):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=samples / "pypdf-minimal-document.pdf")
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    doc = load_document("restricted.pdf", buf.getvalue(), max_bytes=LIMIT)
    assert "Lorem ipsum" in full_text(doc)


def test_pdf_encrypted_with_a_user_password_is_refused(samples: Path):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=samples / "pypdf-minimal-document.pdf")
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(EncryptedDocument, match="locked.pdf"):
        load_document("locked.pdf", buf.getvalue(), max_bytes=LIMIT)


def test_pdf_sections_starting_mid_page_carry_their_own_bookmark():
    """A bookmark pointing into a page splits that page: the hotel rules on page 2 are cited under
    '3. Hotels', not under the section carried over from page 1."""
    from pathlib import Path

    pdf = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "travel-policy.pdf"
    doc = load_document(pdf.name, pdf.read_bytes(), max_bytes=10_000_000)
    hotel = [s for s in doc.sections if "nightly hotel limit" in s.text]
    assert hotel and hotel[0].page == 2 and hotel[0].heading_path == ("3. Hotels",)
    assert all("nightly hotel limit" not in s.text for s in doc.sections if s.heading_path == ("2. Flights",))
