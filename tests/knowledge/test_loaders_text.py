"""Plain text and Markdown: encodings, front matter, headings, fences, binaries in disguise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge.loaders import load_document
from knowledge.types import EmptyDocument, UnsupportedDocument
from tests.knowledge.conftest import LIMIT, full_text, load_sample


def test_utf16_text_decodes(samples: Path):
    text = full_text(load_sample(samples, "unstructured-fake-text-utf-16.txt"))
    assert "Doylestown, PA 18901" in text
    assert "Hamburgers are delicious" in text


def test_non_utf8_markdown_umlauts_decode(samples: Path):
    doc = load_sample(samples, "unstructured-umlauts-non-utf8.md")
    assert doc.sections[0].heading_path == ("können",)
    assert "äöüß" in full_text(doc)


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


def test_random_binary_named_txt_is_refused():
    data = bytes(range(256)) * 16 + os.urandom(1024)
    with pytest.raises(UnsupportedDocument, match="binary"):
        load_document("blob.txt", data, max_bytes=LIMIT)


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


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(encoding: str):
    sentence = "This is a test document for unit tests. Grüße aus München."
    doc = load_document("nobom.txt", sentence.encode(encoding), max_bytes=LIMIT)
    assert full_text(doc) == sentence
