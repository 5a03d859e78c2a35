"""PDF loading: real sample files, PDFs built here (encrypted, blank, damaged)."""

from __future__ import annotations

import io
import os
import time
import zlib
from pathlib import Path

import pytest

from knowledge.loaders import PdfLimits, load_document
from knowledge.types import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    OversizedDocument,
    Scope,
    document_id,
)
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


# ---------------------------------------------------------------------------------------------
# Hostile PDFs, written here byte by byte: limits on pages, text and parse time


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF whose object n is objects[n - 1] (object 1 the catalog), with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _flate_stream(content: bytes) -> bytes:
    packed = zlib.compress(content, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_PAGE = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 %d 0 R >> >> >>"


def _pages_sharing_one_stream(content: bytes, pages: int) -> bytes:
    """`pages` pages whose /Contents are all the same compressed stream (object 4)."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    return _pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
         _FONT, _flate_stream(content)]
        + [_PAGE % (2, 4, 3)] * pages
    )


def _page_tree(fanout: int, depth: int, declared_count: int) -> bytes:
    """fanout ** depth pages from a handful of objects: every tree node lists its child node
    `fanout` times, down to one shared page. The root declares `declared_count` pages."""
    node, font, content, page = 2, depth + 2, depth + 3, depth + 4
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        child = node + level + 1 if level < depth - 1 else page
        count = declared_count if level == 0 else fanout ** (depth - level)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join([b"%d 0 R" % child] * fanout), count))
    objects += [_FONT, _flate_stream(b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET"), _PAGE % (depth + 1, content, font)]
    return _pdf(objects)


# Drawing operators only pypdf's content parser sees: ~20 µs a line, no text out.
_DRAWING = b"0 0 m 10 10 l S\n"
_ONE_WORD = b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n"  # a text operator, so pypdf parses the stream


def _warm_worker() -> None:
    """Start (or reuse) a parse worker, so a timing below measures the parse, not a start-up."""
    travel = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "travel-policy.pdf"
    load_document(travel.name, travel.read_bytes(), max_bytes=LIMIT)


def test_pages_sharing_one_huge_stream_are_stopped_at_the_time_limit():
    # 200 pages all decoding the same 160 KB stream: ~40 s of parsing from a 30 KB file.
    data = _pages_sharing_one_stream(_ONE_WORD + _DRAWING * 10_000, pages=200)
    assert len(data) < 40_000
    _warm_worker()
    started = time.monotonic()
    with pytest.raises(OversizedDocument, match=r"slow\.pdf: reading the PDF took longer than 1\.5 s"):
        load_document("slow.pdf", data, max_bytes=LIMIT, pdf_limits=PdfLimits(parse_timeout_s=1.5))
    assert time.monotonic() - started < 5
    # The killed worker is replaced: the next PDF loads as usual.
    _warm_worker()


def test_one_slow_page_is_stopped_in_the_middle_of_pypdfs_call():
    # One page, one extract_text call of ~7 s (just under pypdf's own 2M-token budget).
    data = _pages_sharing_one_stream(_ONE_WORD + _DRAWING * 280_000, pages=1)
    _warm_worker()
    started = time.monotonic()
    with pytest.raises(OversizedDocument, match="took longer than 1 s"):
        load_document("page.pdf", data, max_bytes=LIMIT, pdf_limits=PdfLimits(parse_timeout_s=1))
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(
    "fanout, depth, declared, pages",
    [(10, 6, 1_000_000, "1,000,000"), (10, 4, 1, "10,000")],  # honest count; a /Count that lies
    ids=["declared", "lying-count"],
)
def test_a_huge_page_count_is_refused_before_any_page_is_read(fanout, depth, declared, pages):
    data = _page_tree(fanout, depth, declared)
    assert len(data) < 2_000
    with pytest.raises(OversizedDocument, match=f"the PDF has {pages} pages; the limit is 100$"):
        load_document("pages.pdf", data, max_bytes=LIMIT, pdf_limits=PdfLimits(max_pages=100))


def test_a_page_with_enormous_text_is_refused():
    line = b"BT /F1 1 Tf 0 0 Td (" + b"A" * 10_000 + b") Tj ET\n"
    data = _pages_sharing_one_stream(line * 50, pages=1)  # 500,000 characters from ~1 KB
    assert len(data) < 2_000
    with pytest.raises(OversizedDocument, match="more than 100,000 characters"):
        load_document("text.pdf", data, max_bytes=LIMIT, pdf_limits=PdfLimits(max_chars=100_000))
    # Under the limit the same file loads.
    doc = load_document("text.pdf", data, max_bytes=LIMIT, pdf_limits=PdfLimits(max_chars=600_000))
    assert len(full_text(doc)) >= 500_000


def test_the_default_limits_admit_a_real_10q_filing(shared_dir: Path):
    path = shared_dir / "corpora" / "sec-10q" / "docs" / "2022 Q3 AAPL.pdf"
    if not path.exists():
        pytest.skip("10-Q corpus not present")
    doc = load_document(path.name, path.read_bytes(), max_bytes=LIMIT)
    assert doc.pages == 28 and "Apple" in full_text(doc)


def test_settings_defaults_are_the_loader_defaults():
    from bot.settings import Settings

    settings = Settings(_env_file=None)
    assert PdfLimits(settings.pdf_max_pages, settings.pdf_max_chars, settings.pdf_parse_timeout_s) == PdfLimits()


def test_a_hostile_pdf_upload_is_refused_with_the_configured_limit_and_nothing_is_stored(settings):
    from admin.types import Actor
    from bot.core import Docent

    docent = Docent.from_settings(settings.model_copy(update={"pdf_parse_timeout_s": 1.0}))
    scope = Scope("T0", "C0")
    try:
        with pytest.raises(OversizedDocument, match="longer than 1 s") as err:
            docent.admin.upload(Actor("cli", "T0", "ops", is_platform_admin=True), "slow.pdf",
                                _pages_sharing_one_stream(_ONE_WORD + _DRAWING * 10_000, pages=200), scope)
        assert "slow.pdf" in str(err.value)
        assert docent.admin.list_documents(scope) == []
        assert docent.knowledge.store.document_hash(document_id(scope, "slow.pdf")) is None
    finally:
        docent.close()


def test_a_pdf_with_an_array_over_pypdfs_default_cap_still_loads():
    # Real filings carry arrays of more than pypdf's default 100,000 elements (2023 Q1 MSFT's
    # 10-Q failed to load with "the PDF is damaged" because of it).
    long_array = b"[" + b"0 " * 150_000 + b"]"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> /PieceInfo << /Big %s >> >>" % long_array
    data = _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>", _FONT,
                 _flate_stream(b"BT /F1 12 Tf 72 720 Td (Quarterly report) Tj ET"), page])
    doc = load_document("filing.pdf", data, max_bytes=LIMIT)
    assert doc.pages == 1 and "Quarterly report" in full_text(doc)
