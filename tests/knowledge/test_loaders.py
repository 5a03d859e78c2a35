"""The entry point against every awkward real file in shared/corpora/samples, and the checks
every format shares: size, extension, magic bytes, text cleaning, hashing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge.loaders import SUPPORTED_EXTENSIONS, clean_text, content_hash, load_document
from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    EncryptedDocument,
    OversizedDocument,
    UnsupportedDocument,
)
from tests.knowledge.conftest import LIMIT, MB, full_text


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


@pytest.mark.parametrize("name", ["random.pdf", "random.docx"])
def test_random_bytes_with_an_office_name_are_refused(name: str):
    data = os.urandom(4096)
    with pytest.raises(UnsupportedDocument, match=name):
        load_document(name, data, max_bytes=LIMIT)


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
