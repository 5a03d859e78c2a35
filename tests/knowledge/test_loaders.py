"""Loaders against the awkward real files in shared/corpora/samples and hostile inputs built here."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from knowledge.loaders import (
    MAX_DOCX_UNCOMPRESSED_BYTES,
    SUPPORTED_EXTENSIONS,
    clean_text,
    content_hash,
    load_document,
)
from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    EncryptedDocument,
    OversizedDocument,
    UnsupportedDocument,
)

MB = 1024 * 1024
LIMIT = 25 * MB


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> Path:
    path = shared_dir / "corpora" / "samples"
    if not path.is_dir():
        pytest.skip(f"no samples at {path}")
    return path


def load_sample(samples: Path, name: str):
    return load_document(name, (samples / name).read_bytes(), max_bytes=LIMIT)


def full_text(doc) -> str:
    return "\n".join(s.text for s in doc.sections)


# ---------------------------------------------------------------------------------------------
# Every sample either loads with text or fails with the right, named error

EXPECTED_ERRORS = {
    "pypdf-libreoffice-writer-password.pdf": EncryptedDocument,
    "unstructured-password.pdf": EncryptedDocument,
    "unstructured-empty.txt": EmptyDocument,
    "unstructured-fake-text-all-whitespace.txt": EmptyDocument,
}


def test_every_supported_sample_loads_or_fails_with_the_expected_error(samples: Path):
    seen = 0
    for path in sorted(samples.iterdir()):
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            continue
        seen += 1
        expected = EXPECTED_ERRORS.get(path.name)
        if expected:
            with pytest.raises(expected) as err:
                load_document(path.name, path.read_bytes(), max_bytes=LIMIT)
            assert path.name in str(err.value)
            continue
        doc = load_document(path.name, path.read_bytes(), max_bytes=LIMIT)
        assert doc.name == path.name
        assert doc.title
        assert doc.sections, path.name
        assert all(s.text.strip() for s in doc.sections), path.name
        text = full_text(doc)
        assert "\x00" not in text and "\r" not in text
    assert seen >= 20


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


def test_utf16_text_decodes(samples: Path):
    text = full_text(load_sample(samples, "unstructured-fake-text-utf-16.txt"))
    assert "Doylestown, PA 18901" in text
    assert "Hamburgers are delicious" in text


def test_non_utf8_markdown_umlauts_decode(samples: Path):
    doc = load_sample(samples, "unstructured-umlauts-non-utf8.md")
    assert doc.sections[0].heading_path == ("können",)
    assert "äöüß" in full_text(doc)


def test_cp1252_html_decodes_euro_and_accents(samples: Path):
    doc = load_sample(samples, "unstructured-fake-html-cp1252.html")
    text = full_text(doc)
    assert "15,50 €" in text
    assert "El niño comió paella con ñoquis" in text  # cp1250 would give "nińo"
    assert "L'été était très chaud" in text
    assert doc.title == "My First Heading"


def test_html_drops_header_and_footer_and_keeps_heading_path(samples: Path):
    doc = load_sample(samples, "unstructured-fake-html-with-footer-and-header.html")
    text = full_text(doc)
    assert "My first paragraph." in text
    assert "Header" not in text and "Footer" not in text
    assert doc.sections[0].heading_path == ("My First Heading",)


def test_html_uses_title_tag_and_drops_scripts(samples: Path):
    doc = load_sample(samples, "unstructured-ideas-page.html")
    assert doc.title == "How to Get New Ideas"
    text = full_text(doc)
    assert "The way to get new ideas is to notice anomalies" in text
    assert "escape(document.referrer)" not in text


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


def test_markdown_code_fence_hash_is_not_a_heading():
    md = b"# Guide\n\nIntro text.\n\n```bash\n# not a heading\necho hi\n```\n\n## Next\n\nMore text.\n"
    doc = load_document("guide.md", md, max_bytes=LIMIT)
    assert doc.title == "Guide"
    assert [s.heading_path for s in doc.sections] == [("Guide",), ("Guide", "Next")]
    assert "# not a heading" in doc.sections[0].text


def test_markdown_front_matter_is_stripped_and_gives_the_title():
    md = b"---\ntitle: Leave policy\nredirect_from:\n  - /old/\n---\n\nTake leave. Tell your lead.\n"
    doc = load_document("leave.md", md, max_bytes=LIMIT)
    assert doc.title == "Leave policy"
    text = full_text(doc)
    assert "redirect_from" not in text
    assert text == "Take leave. Tell your lead."


def test_markdown_front_matter_only_is_empty():
    with pytest.raises(EmptyDocument):
        load_document("redirect.md", b"---\ntitle: Moved\nredirect_to: https://x\n---\n", max_bytes=LIMIT)


def test_markdown_nested_headings_pop_to_the_right_level():
    md = b"# A\n\na\n\n## B\n\nb\n\n### C\n\nc\n\n## D\n\nd\n"
    doc = load_document("h.md", md, max_bytes=LIMIT)
    assert [s.heading_path for s in doc.sections] == [
        ("A",), ("A", "B"), ("A", "B", "C"), ("A", "D")
    ]


def test_markdown_from_the_handbook_loads(shared_dir: Path):
    path = shared_dir / "corpora" / "18f-handbook" / "about.md"
    if not path.exists():
        pytest.skip("handbook page not present")
    doc = load_document(path.name, path.read_bytes(), max_bytes=LIMIT)
    assert doc.sections and not full_text(doc).startswith("---")


# ---------------------------------------------------------------------------------------------
# Hostile and wrong inputs built in the test


def _minimal_pdf(samples: Path) -> bytes:
    return (samples / "pypdf-pdflatex-4-pages.pdf").read_bytes()


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.02])
def test_truncated_pdf_is_corrupt(samples: Path, keep: float):
    data = _minimal_pdf(samples)
    with pytest.raises(CorruptDocument, match="damaged"):
        load_document("cut.pdf", data[: int(len(data) * keep)], max_bytes=LIMIT)


@pytest.mark.parametrize("name", ["random.pdf", "random.docx"])
def test_random_bytes_with_an_office_name_are_refused(name: str):
    data = os.urandom(4096)
    with pytest.raises(UnsupportedDocument, match=name):
        load_document(name, data, max_bytes=LIMIT)


def test_pdf_magic_with_garbage_is_corrupt():
    with pytest.raises(CorruptDocument):
        load_document("fake.pdf", b"%PDF-1.7\n" + os.urandom(2048), max_bytes=LIMIT)


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


@pytest.mark.parametrize("name", ["setup.exe", "photo.png", "archive.zip", "noext", "old.doc"])
def test_unsupported_extensions_are_refused_with_the_reason(name: str):
    with pytest.raises(UnsupportedDocument) as err:
        load_document(name, b"whatever content", max_bytes=LIMIT)
    assert name in str(err.value)
    assert "PDF, DOCX, TXT, Markdown or HTML" in str(err.value)


@pytest.mark.parametrize(
    "name,data",
    [
        ("notes.txt", b"\x89PNG\r\n\x1a\n" + os.urandom(256)),
        ("notes.txt", b"MZ\x90\x00" + os.urandom(256)),
        ("notes.md", b"%PDF-1.4 fake"),
        ("page.html", b"PK\x03\x04" + os.urandom(64)),
    ],
)
def test_binary_content_with_a_text_name_is_refused(name: str, data: bytes):
    with pytest.raises(UnsupportedDocument, match="not a text file"):
        load_document(name, data, max_bytes=LIMIT)


def test_random_binary_named_txt_is_refused():
    data = bytes(range(256)) * 16 + os.urandom(1024)
    with pytest.raises(UnsupportedDocument, match="binary"):
        load_document("blob.txt", data, max_bytes=LIMIT)


def test_oversized_file_is_refused_first_with_the_limit_in_mb():
    # Over the limit AND a wrong extension: the size is reported (checked first).
    data = b"x" * (2 * MB + 1)
    with pytest.raises(OversizedDocument) as err:
        load_document("big.exe", data, max_bytes=2 * MB)
    assert "big.exe" in str(err.value)
    assert "2 MB" in str(err.value)


def test_file_exactly_at_the_limit_is_accepted():
    data = b"word " * 1000
    doc = load_document("exact.txt", data, max_bytes=len(data))
    assert doc.sections


def test_zero_width_and_control_characters_are_stripped():
    raw = "Zero\u200bwidth\u00ad text\x00 with\x07 controls\r\nand\ttabs\u00a0kept.\x1b[0m".encode()
    doc = load_document("ctl.txt", raw, max_bytes=LIMIT)
    text = full_text(doc)
    assert text == "Zerowidth text with controls\nand\ttabs kept.[0m"


def test_only_invisible_characters_is_empty():
    with pytest.raises(EmptyDocument):
        load_document("invisible.txt", "\u200b\u200b\ufeff\x00\x01 \n".encode(), max_bytes=LIMIT)


def test_cp1252_text_file_decodes():
    raw = "Die schöne Frau zahlte 15,50 € für den Kaffee. Très bien, señor.".encode("cp1252")
    doc = load_document("cafe.txt", raw, max_bytes=LIMIT)
    assert "schöne" in full_text(doc) and "€" in full_text(doc) and "señor" in full_text(doc)


def test_cyrillic_cp1251_text_decodes():
    sentence = "Приветствую вас, это тест на кириллице. Ещё немного текста для детектора."
    doc = load_document("ru.txt", sentence.encode("cp1251"), max_bytes=LIMIT)
    assert full_text(doc) == sentence


def test_utf8_bom_is_removed():
    doc = load_document("bom.md", "\ufeff# Handbook\n\nBody.".encode("utf-8"), max_bytes=LIMIT)
    assert doc.title == "Handbook" and full_text(doc) == "Body."


def test_html_meta_charset_is_respected():
    html = '<html><head><meta charset="windows-1251"><title>Тест</title></head><body><p>Привет мир</p></body></html>'
    doc = load_document("ru.html", html.encode("cp1251"), max_bytes=LIMIT)
    assert doc.title == "Тест"
    assert "Привет мир" in full_text(doc)


def test_html_removes_boilerplate_elements_and_keeps_tables_as_rows():
    html = b"""<html><head><title>T</title><style>.x{}</style></head><body>
      <nav>Home | About</nav><header>Site header</header>
      <h1>Main</h1><p>Visible <b>bold</b> text.</p>
      <script>alert('x')</script><noscript>enable js</noscript>
      <form><input value="q">Search</form><aside>Side note</aside><template>tpl</template>
      <svg><text>svg text</text></svg>
      <h2>Prices</h2><table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>2</td></tr></table>
      <footer>Site footer</footer></body></html>"""
    doc = load_document("page.html", html, max_bytes=LIMIT)
    text = full_text(doc)
    for gone in ("Home", "Site header", "alert", "enable js", "Search", "Side note", "tpl", "svg text", "Site footer", ".x{}"):
        assert gone not in text
    assert "Visible bold text." in text
    prices = next(s for s in doc.sections if s.heading_path == ("Main", "Prices"))
    assert "Item | Price\nTea | 2" in prices.text


def test_deeply_nested_html_does_not_crash():
    html = b"<div>" * 5000 + b"deep text" + b"</div>" * 5000
    try:
        doc = load_document("deep.html", html, max_bytes=LIMIT)
    except CorruptDocument:
        return  # refusing is acceptable; crashing is not
    assert "deep text" in full_text(doc)


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


# ---------------------------------------------------------------------------------------------
# Hash and helpers


def test_content_hash_is_salted_sha256_of_the_bytes():
    import hashlib

    assert content_hash(b"abc") == content_hash(b"abc")
    assert content_hash(b"abc") != content_hash(b"abd")
    assert content_hash(b"abc") != hashlib.sha256(b"abc").hexdigest()  # the version salt is in
    doc = load_document("a.txt", b"abc", max_bytes=LIMIT)
    assert doc.content_hash == content_hash(b"abc")


def test_url_is_kept():
    doc = load_document("a.txt", b"hello", max_bytes=LIMIT, url="https://example.org/a.txt")
    assert doc.url == "https://example.org/a.txt"


def test_document_errors_are_a_family_with_the_file_name():
    for exc in (UnsupportedDocument("x.exe"), EmptyDocument("x.txt"), CorruptDocument("x.pdf")):
        assert isinstance(exc, DocumentError)
        assert str(exc).startswith("x.")


def test_clean_text_normalises_line_ends_and_blank_runs():
    assert clean_text("a\r\nb\rc\n\n\n\nd  \n") == "a\nb\nc\n\nd\n"


def test_a_folder_path_name_is_kept_whole_so_same_named_files_stay_apart():
    a = load_document("team-a/guide.md", b"Alpha.", max_bytes=LIMIT)
    b = load_document("team-b/guide.md", b"Beta.", max_bytes=LIMIT)
    assert (a.name, b.name) == ("team-a/guide.md", "team-b/guide.md")
    assert a.title == b.title == "guide"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(encoding: str):
    sentence = "This is a test document for unit tests. Grüße aus München."
    doc = load_document("nobom.txt", sentence.encode(encoding), max_bytes=LIMIT)
    assert full_text(doc) == sentence


def test_pdf_sections_starting_mid_page_carry_their_own_bookmark():
    """A bookmark pointing into a page splits that page: the hotel rules on page 2 are cited under
    '3. Hotels', not under the section carried over from page 1."""
    from pathlib import Path

    pdf = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "travel-policy.pdf"
    doc = load_document(pdf.name, pdf.read_bytes(), max_bytes=10_000_000)
    hotel = [s for s in doc.sections if "nightly hotel limit" in s.text]
    assert hotel and hotel[0].page == 2 and hotel[0].heading_path == ("3. Hotels",)
    assert all("nightly hotel limit" not in s.text for s in doc.sections if s.heading_path == ("2. Flights",))
