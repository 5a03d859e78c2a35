"""Chunking: exact token limits, nothing lost, order kept, structure respected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from knowledge.chunking import chunk_document, count_tokens, count_tokens_many
from knowledge.loaders import load_document
from knowledge.types import LoadedDocument, Scope, Section

SCOPE = Scope("T1", "C1")


def make_doc(*sections: Section, title: str = "Doc") -> LoadedDocument:
    return LoadedDocument(name="doc.txt", title=title, sections=tuple(sections), content_hash="h" * 64)


def chunk(doc: LoadedDocument, **kw):
    return chunk_document(doc, SCOPE, doc_id="d1", ingested_at=123.0, **kw)


def squash(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Token counting


def test_count_tokens_matches_the_models_word_pieces():
    # Known WordPiece splits of the uncased BERT vocabulary (no [CLS]/[SEP]).
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("Hello, World!") == 4  # hello , world !
    assert count_tokens("unaffable") > 1  # split into word pieces, not one token per word
    # Long text is not truncated at the 128 the tokenizer.json ships with.
    assert count_tokens("word " * 1000) == 1000


def test_count_tokens_agrees_with_the_transformers_tokenizer():
    transformers = pytest.importorskip("transformers")
    from knowledge.embeddings import default_model_path

    reference = transformers.AutoTokenizer.from_pretrained(str(default_model_path()), local_files_only=True)
    for text in ["Großartige Überraschung!", "naïve café 東京 tokens", "e-mail: a.b@example.org", "x" * 300]:
        assert count_tokens(text) == len(reference.encode(text, add_special_tokens=False))


def test_count_tokens_many_equals_one_by_one():
    texts = ["a b c", "", "Überraschung", "one. two. three."]
    assert count_tokens_many(texts) == [count_tokens(t) for t in texts]


# ---------------------------------------------------------------------------------------------
# Structure


def test_chunks_never_cross_pages_or_headings():
    doc = make_doc(
        Section("Page one text. Short.", page=1, heading_path=("A",)),
        Section("Page two text.", page=2, heading_path=("A",)),
        Section("Other heading text.", page=2, heading_path=("A", "B")),
    )
    chunks = chunk(doc)
    assert [(c.page, c.heading_path, c.text) for c in chunks] == [
        (1, ("A",), "Page one text. Short."),
        (2, ("A",), "Page two text."),
        (2, ("A", "B"), "Other heading text."),
    ]
    assert [c.chunk_index for c in chunks] == [0, 1, 2]


def test_chunk_carries_document_fields_and_clean_text():
    doc = LoadedDocument(
        name="guide.md", title="Guide", sections=(Section("Body text here.", heading_path=("Intro",)),),
        content_hash="abc", url="https://x/guide.md",
    )
    (c,) = chunk_document(doc, SCOPE, doc_id="id9", ingested_at=5.0)
    assert (c.doc_id, c.title, c.source, c.scope, c.content_hash, c.ingested_at, c.url) == (
        "id9", "Guide", "guide.md", SCOPE, "abc", 5.0, "https://x/guide.md"
    )
    assert c.text == "Body text here."  # no title/heading prefixed


def sentences(n: int, words: int = 12, tag: str = "s") -> list[str]:
    return [f"{tag}{i} " + " ".join(f"w{i}x{j}" for j in range(words)) + "." for i in range(n)]


def test_long_section_is_packed_with_overlap_of_trailing_sentences():
    sents = sentences(40, words=4)
    assert count_tokens(sents[0]) < 20  # so one or two sentences fit the overlap
    doc = make_doc(Section(" ".join(sents)))
    chunks = chunk(doc, chunk_tokens=100, overlap_tokens=40)
    assert len(chunks) > 3
    for c in chunks:
        assert count_tokens(c.text) <= 100
    for prev, nxt in zip(chunks, chunks[1:]):
        prev_sents = re.findall(r"s\d+ [^.]*\.", prev.text)
        next_sents = re.findall(r"s\d+ [^.]*\.", nxt.text)
        # The next chunk starts with the previous one's last sentence(s), within the overlap.
        shared = [s for s in next_sents if s in prev_sents]
        assert shared and shared == prev_sents[-len(shared):]
        assert next_sents[: len(shared)] == shared
        assert count_tokens(" ".join(shared)) <= 40


def test_no_overlap_when_overlap_is_zero():
    doc = make_doc(Section(" ".join(sentences(30))))
    chunks = chunk(doc, chunk_tokens=80, overlap_tokens=0)
    joined = " ".join(c.text for c in chunks)
    assert squash(joined) == squash(doc.sections[0].text)


def test_paragraph_boundary_is_preferred_over_mid_paragraph_cut():
    p1 = " ".join(sentences(5, tag="a"))  # ~ 5 * 26 tokens
    p2 = " ".join(sentences(5, tag="b"))
    doc = make_doc(Section(p1 + "\n\n" + p2))
    n1 = count_tokens(p1)
    limit = n1 + 20  # p1 fits, p1 + p2 doesn't
    chunks = chunk(doc, chunk_tokens=limit, overlap_tokens=0)
    assert chunks[0].text == p1


def test_over_long_sentence_is_split_by_words_within_the_limit():
    giant = " ".join(f"word{i}" for i in range(600)) + "."
    doc = make_doc(Section(giant))
    chunks = chunk(doc, chunk_tokens=64, overlap_tokens=10)
    assert len(chunks) > 2
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    # Cut between words: every word survives whole, in order.
    words = " ".join(c.text for c in chunks).split()
    assert [w for w in words] == giant.split()


def test_single_giant_word_is_split_between_word_pieces():
    blob = "a1b2c3d4" * 400  # no spaces at all
    doc = make_doc(Section(blob))
    chunks = chunk(doc, chunk_tokens=50, overlap_tokens=0)
    assert all(count_tokens(c.text) <= 50 for c in chunks)
    assert "".join(c.text for c in chunks) == blob


def test_table_lines_are_units_when_a_table_is_longer_than_a_chunk():
    rows = "\n".join(f"row{i} | {i * 3} | value {i}" for i in range(200))
    doc = make_doc(Section(rows))
    chunks = chunk(doc, chunk_tokens=60, overlap_tokens=10)
    assert all(count_tokens(c.text) <= 60 for c in chunks)
    for c in chunks:  # rows are never cut in half
        for line in c.text.split("\n"):
            assert re.fullmatch(r"row\d+ \| \d+ \| value \d+", line)


def test_tiny_trailing_fragment_is_merged_when_it_fits():
    # The last paragraph is tiny and the previous chunk ended at a paragraph break.
    p1 = " ".join(sentences(6, tag="a"))
    tail = "Done."
    doc = make_doc(Section(p1 + "\n\n" + tail))
    limit = count_tokens(p1) + count_tokens(tail)
    chunks = chunk(doc, chunk_tokens=limit, overlap_tokens=0)
    assert len(chunks) == 1
    assert chunks[0].text.endswith("Done.")


def test_invalid_sizes_are_rejected():
    doc = make_doc(Section("text"))
    with pytest.raises(ValueError):
        chunk(doc, chunk_tokens=100, overlap_tokens=100)
    with pytest.raises(ValueError):
        chunk(doc, chunk_tokens=4, overlap_tokens=0)


def test_real_documents_keep_pages_and_headings(shared_dir: Path):
    samples = shared_dir / "corpora" / "samples"
    pdf = load_document("p.pdf", (samples / "pypdf-pdflatex-4-pages.pdf").read_bytes(), max_bytes=10**8)
    chunks = chunk(pdf, chunk_tokens=128, overlap_tokens=20)
    assert {c.page for c in chunks} == {1, 2, 3, 4}
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    assert all(count_tokens(c.text) <= 128 for c in chunks)
    docx = load_document("r.docx", (samples / "18f-project-readme-template.docx").read_bytes(), max_bytes=10**8)
    chunks = chunk(docx)
    assert any(c.heading_path[-1:] == ("Key contacts",) and "Organization" in c.text for c in chunks)


def test_handbook_chunks_are_within_the_model_window(shared_dir: Path):
    handbook = shared_dir / "corpora" / "18f-handbook"
    pages = sorted(handbook.rglob("*.md"))[:40]
    if not pages:
        pytest.skip("no handbook")
    total = 0
    for page in pages:
        try:
            doc = load_document(page.name, page.read_bytes(), max_bytes=10**8)
        except Exception:
            continue
        chunks = chunk(doc)
        total += len(chunks)
        assert max(count_tokens_many([c.text for c in chunks])) <= 256
        for c in chunks:  # each chunk is a verbatim slice of its section
            assert any(c.text in s.text for s in doc.sections if s.heading_path == c.heading_path)
    assert total > 40


# ---------------------------------------------------------------------------------------------
# Properties

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöü", min_size=1, max_size=14)
SENTENCE = st.lists(WORD, min_size=1, max_size=40).map(lambda ws: " ".join(ws).capitalize() + ".")
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)
SECTION_TEXT = st.lists(PARAGRAPH, min_size=1, max_size=5).map("\n\n".join)


@st.composite
def documents(draw):
    n = draw(st.integers(1, 4))
    sections = []
    for i in range(n):
        sections.append(
            # Each section gets its own heading so its chunks can be told apart from the rest.
            Section(draw(SECTION_TEXT), page=draw(st.one_of(st.none(), st.integers(1, 3))),
                    heading_path=(f"S{i}", *draw(st.lists(st.sampled_from(["Intro", "Usage"]), max_size=2))))
        )
    return make_doc(*sections)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), limit=st.integers(16, 120), overlap_share=st.floats(0, 0.5))
def test_property_limits_no_loss_order(doc: LoadedDocument, limit: int, overlap_share: float):
    overlap = int(limit * overlap_share)
    chunks = chunk(doc, chunk_tokens=limit, overlap_tokens=overlap)

    # Every chunk within the limit (exact word-piece count of the text as stored).
    assert all(count_tokens(c.text) <= limit for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))

    for section in doc.sections:
        mine = [c for c in chunks if c.heading_path == section.heading_path and c.page == section.page]
        # Chunks are verbatim slices of their section, in order (start offsets never go back).
        assert mine
        previous_start = 0
        for c in mine:
            start = section.text.find(c.text, previous_start)
            assert start >= previous_start
            previous_start = start
        # No text lost: every sentence that fits in a chunk appears whole in some chunk;
        # longer ones (the documented edge) appear as consecutive word runs.
        for sentence in re.findall(r"[^.]+\.", section.text):
            sentence = sentence.strip()
            if count_tokens(sentence) <= limit:
                assert any(sentence in c.text for c in mine), sentence
            else:
                words_in_chunks = " ".join(c.text for c in mine).split()
                assert all(w in words_in_chunks for w in sentence.split())

    # Sections are visited in document order.
    order = [(c.page, c.heading_path) for c in chunks]
    expected = []
    for s in doc.sections:
        key = (s.page, s.heading_path)
        if not expected or expected[-1] != key:
            expected.append(key)
    compressed = [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k]
    assert compressed == expected


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=1, max_size=400), limit=st.integers(8, 64))
def test_property_arbitrary_unicode_never_breaks_the_limit(text: str, limit: int):
    if not text.strip():
        return
    doc = make_doc(Section(text))
    chunks = chunk(doc, chunk_tokens=limit, overlap_tokens=limit // 4)
    assert all(count_tokens(c.text) <= limit for c in chunks)
    # Every non-space character of the input is covered by some chunk's slice.
    covered = "".join(c.text for c in chunks)
    for ch in set(text) - set(" \t\n\r\x0b\x0c"):
        if ch.isspace():
            continue
        assert ch in covered
