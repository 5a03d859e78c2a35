"""KnowledgeBase on the real Qdrant Edge store with the hash embedder: idempotency, replacement,
removal, scoping, and bad input leaving the store untouched."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from knowledge.chunking import chunk_document
from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.ingest import EMBED_BATCH, KnowledgeBase, embedding_text
from knowledge.types import (
    CorruptDocument,
    DocumentError,
    EmptyDocument,
    OversizedDocument,
    Scope,
    UnsupportedDocument,
    document_id,
)
from tests.conftest import FailingBackend, StoreFailure

C1 = Scope("T1", "C1")
C2 = Scope("T1", "C2")


class SpyStore:
    """The real store, recording every write call made through it."""

    WRITES = {"add", "replace_document", "stage", "publish", "retire", "discard", "delete_document"}

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):  # reads pass straight through; writes are recorded first
        attr = getattr(self.inner, name)
        if name not in self.WRITES:
            return attr

        def recorded(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return recorded


@pytest.fixture
def store(tmp_path):
    s = SpyStore(EdgeChunkStore(tmp_path / "edge"))
    yield s
    s.inner.close()


@pytest.fixture
def kb(store):
    return KnowledgeBase(store, HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)


def search_texts(kb: KnowledgeBase, query: str, scope: Scope, limit: int = 10) -> list[str]:
    vector = kb.embed_texts([query])[0]
    return [h.chunk.text for h in kb.store.search(query, vector, scope, limit)]


LEAVE_V1 = (
    "# Leave\n\nAnnual leave is twenty days per year. Ask your supervisor before booking flights.\n\n"
    "## Sick leave\n\nSick leave needs a doctor's note after three days.\n"
).encode()
LEAVE_V2 = (
    "# Leave\n\nAnnual leave is thirty days per year from 2027 onwards.\n\n"
    "## Parental leave\n\nParental leave lasts sixteen weeks, fully paid.\n"
).encode()


def test_ingest_stores_every_chunk_with_scope_and_returns_a_result(kb, store):
    result = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    assert result.changed and not result.replaced
    assert result.doc_id == document_id(C1, "leave.md")
    assert result.title == "Leave" and result.scope == C1
    assert result.chunks == store.count() > 0
    docs = kb.documents(C1)
    assert [(d["doc_id"], d["chunks"]) for d in docs] == [(result.doc_id, result.chunks)]
    hits = search_texts(kb, "sick leave doctor note", C1)
    assert any("doctor's note" in t for t in hits)


def test_reingesting_identical_content_writes_nothing(kb, store):
    first = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    count = store.count()
    store.calls.clear()
    again = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    assert not again.changed and not again.replaced
    assert again.doc_id == first.doc_id and again.content_hash == first.content_hash
    assert again.chunks == first.chunks
    assert store.calls == []
    assert store.count() == count


def test_changed_content_replaces_the_old_version(kb, store):
    kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    result = kb.ingest_bytes("leave.md", LEAVE_V2, C1)
    assert result.changed and result.replaced
    assert store.calls.count("replace_document") == 2
    # Only the new version is stored: the chunk count is exactly the new chunking's.
    doc = kb.load("leave.md", LEAVE_V2)
    expected = chunk_document(doc, C1, doc_id=result.doc_id, chunk_tokens=64, overlap_tokens=10, ingested_at=0)
    assert store.count() == result.chunks == len(expected)
    texts = search_texts(kb, "leave days per year", C1)
    assert any("thirty days" in t for t in texts)
    assert not any("twenty days" in t or "doctor" in t for t in texts)
    assert store.document_hash(result.doc_id) == doc.content_hash


def test_remove_by_name_and_by_doc_id(kb, store):
    a = kb.ingest_bytes("a.md", LEAVE_V1, C1)
    kb.ingest_bytes("b.md", LEAVE_V2, C1)
    assert kb.remove(C1, "a.md") == a.chunks
    assert [d["source"] for d in kb.documents(C1)] == ["b.md"]
    assert kb.remove(C1, "a.md") == 0  # already gone
    b_id = document_id(C1, "b.md")
    assert kb.remove(C1, b_id) > 0
    assert store.count() == 0


def test_remove_by_doc_id_does_not_reach_other_scopes(kb, store):
    other = kb.ingest_bytes("a.md", LEAVE_V1, C2)
    assert kb.remove(C1, other.doc_id) == 0
    assert store.count() == other.chunks


def test_same_name_in_two_channels_is_two_documents(kb, store):
    r1 = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    r2 = kb.ingest_bytes("leave.md", LEAVE_V2, C2)
    assert r1.doc_id != r2.doc_id
    assert r2.changed and not r2.replaced
    assert store.count() == r1.chunks + r2.chunks
    assert any("twenty days" in t for t in search_texts(kb, "leave days per year", C1))
    assert not any("twenty days" in t for t in search_texts(kb, "leave days per year", C2))
    kb.remove(C2, "leave.md")
    assert store.count() == r1.chunks


@pytest.mark.parametrize(
    "name,data,error",
    [
        ("virus.exe", b"MZ...", UnsupportedDocument),
        ("empty.txt", b"  \n\t ", EmptyDocument),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<", CorruptDocument),
        ("big.txt", b"x" * 2048, OversizedDocument),
        ("leave.md", b"\x89PNG\r\n\x1a\n" + bytes(100), UnsupportedDocument),
    ],
)
def test_bad_input_raises_and_leaves_the_store_unchanged(store, name, data, error):
    kb = KnowledgeBase(store, HashEmbeddings(), max_file_bytes=1024, chunk_tokens=64, overlap_tokens=10)
    kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    before = (store.count(), store.document_hash(document_id(C1, "leave.md")))
    store.calls.clear()
    with pytest.raises(error) as err:
        kb.ingest_bytes(name, data, C1)
    assert name in str(err.value)
    assert store.calls == []
    assert (store.count(), store.document_hash(document_id(C1, "leave.md"))) == before


class FailingEmbeddings(HashEmbeddings):
    """Fails on the n-th batch: a model crash halfway through a document."""

    def __init__(self, fail_on_call: int):
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed_array(self, texts):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("model crashed")
        return super().embed_array(texts)


def test_embedding_failure_midway_keeps_the_old_version(store):
    kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=32, overlap_tokens=0)
    first = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    long_v2 = b"# Leave\n\n" + b" ".join(f"Rule {i} says something new.".encode() for i in range(1500))
    failing = KnowledgeBase(store, FailingEmbeddings(fail_on_call=2), chunk_tokens=32, overlap_tokens=0)
    store.calls.clear()
    with pytest.raises(RuntimeError):
        failing.ingest_bytes("leave.md", long_v2, C1)
    assert failing.embedder.calls == 2  # the first batch was embedded, then it failed
    assert store.calls == []
    assert store.count() == first.chunks
    assert store.document_hash(first.doc_id) == first.content_hash


def test_progress_reports_embedding_batches(store):
    kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=32, overlap_tokens=0)
    text = " ".join(f"Sentence number {i} is here." for i in range(600)).encode()
    seen: list[tuple[int, int]] = []
    result = kb.ingest_bytes("long.txt", text, C1, on_progress=lambda done, total: seen.append((done, total)))
    assert result.chunks > EMBED_BATCH
    assert seen[0] == (0, result.chunks) and seen[-1] == (result.chunks, result.chunks)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) == 1 + -(-result.chunks // EMBED_BATCH)


def test_ingest_path_uses_the_file_name(kb, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"The wifi password is on the fridge.")
    result = kb.ingest_path(path, C1)
    assert result.name == "notes.txt" and result.doc_id == document_id(C1, "notes.txt")


def test_ingest_real_samples(kb, shared_dir: Path):
    samples = shared_dir / "corpora" / "samples"
    result = kb.ingest_path(samples / "pypdf-pdflatex-4-pages.pdf", C1)
    assert result.pages == 4 and result.chunks > 0
    pages = {h.chunk.page for h in kb.store.search("text", kb.embed_texts(["text"])[0], C1, 50)}
    assert pages == {1, 2, 3, 4}
    docx_result = kb.ingest_path(samples / "unstructured-docx-tables.docx", C1)
    assert any("Header Col 1 | Header Col 2" in t for t in search_texts(kb, "Header Col", C1))
    assert docx_result.changed


def test_warnings_reach_the_result(kb, shared_dir: Path):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=shared_dir / "corpora" / "samples" / "pypdf-minimal-document.pdf")
    writer.add_blank_page(width=100, height=100)
    buf = io.BytesIO()
    writer.write(buf)
    result = kb.ingest_bytes("mixed.pdf", buf.getvalue(), C1)
    assert any("no extractable text" in w for w in result.warnings)


def test_a_plain_langchain_embeddings_is_wrapped_and_normalised(store):
    from langchain_core.embeddings import Embeddings

    class ListOnly(Embeddings):
        def embed_documents(self, texts):
            return [[float(len(t)), 0.0, 0.0] + [0.0] * 381 for t in texts]

        def embed_query(self, text):
            return self.embed_documents([text])[0]

    kb = KnowledgeBase(store, ListOnly())
    out = kb.embed_texts(["a", "abc"])
    assert out.dtype == np.float32 and out.shape == (2, 384)
    assert kb.embedder.dim == 384 and kb.embedder.model_name == "ListOnly"
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0) and out[1, 0] == 1.0


def test_embedding_text_adds_title_and_headings_but_chunk_text_stays_clean(kb, store):
    kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    hit = kb.store.search("sick", kb.embed_texts(["sick"])[0], C1, 10)
    sick = next(h.chunk for h in hit if "doctor" in h.chunk.text)
    assert sick.text == "Sick leave needs a doctor's note after three days."
    assert embedding_text(sick) == "Leave › Sick leave\n\nSick leave needs a doctor's note after three days."


# ---------------------------------------------------------------------------------------------
# Property: ingest is idempotent and the last upload wins, whatever the sequence


_example_workspaces = itertools.count()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uploads=st.lists(st.tuples(st.sampled_from(["a.md", "b.md"]), st.sampled_from([0, 1, 2])), min_size=1, max_size=6))
def test_property_last_upload_wins_and_repeats_write_nothing(store, uploads):
    versions = [LEAVE_V1, LEAVE_V2, b"# Other\n\nSomething else entirely. Nothing about leave."]
    scope = Scope(f"T-example-{next(_example_workspaces)}", "C1")  # one store, a fresh workspace per example
    kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)
    last: dict[str, int] = {}
    for name, v in uploads:
        writes = len(store.calls)
        result = kb.ingest_bytes(name, versions[v], scope)
        assert result.changed == (last.get(name) != v)
        assert (len(store.calls) > writes) == result.changed
        last[name] = v
    expected = 0
    for name, v in last.items():
        doc = kb.load(name, versions[v])
        doc_id = document_id(scope, name)
        assert store.document_hash(doc_id) == doc.content_hash
        assert [(s.content_hash, s.live) for s in store.versions(doc_id)] == [(doc.content_hash, True)]
        expected += len(chunk_document(doc, scope, doc_id="x", chunk_tokens=64, overlap_tokens=10, ingested_at=0))
    assert sum(d["chunks"] for d in kb.documents(scope)) == expected


def test_document_error_is_the_base_of_every_refusal(kb):
    with pytest.raises(DocumentError):
        kb.ingest_bytes("x.png", b"\x89PNG", C1)


# ---------------------------------------------------------------------------------------------
# ingest_many: batches that span documents, same per-document guarantees


class CountingEmbeddings(HashEmbeddings):
    def __init__(self):
        self.batches: list[int] = []

    def embed_array(self, texts):
        self.batches.append(len(texts))
        return super().embed_array(texts)


def small_docs(kb: KnowledgeBase, n: int):
    return [kb.load(f"note-{i}.md", f"# Note {i}\n\nFact number {i} is true. It matters.".encode()) for i in range(n)]


def test_ingest_many_shares_embedding_batches_and_matches_single_ingest(tmp_path):
    embedder = CountingEmbeddings()
    store = SpyStore(EdgeChunkStore(tmp_path / "many"))
    try:
        kb = KnowledgeBase(store, embedder, chunk_tokens=64, overlap_tokens=10)
        docs = small_docs(kb, 30)
        progress: list[int] = []
        results = kb.ingest_many(docs, C1, on_progress=lambda done, total: progress.append(done), batch_chunks=16)
        assert [r.name for r in results] == [d.name for d in docs]
        assert all(r.changed and not r.replaced and r.chunks == 1 for r in results)
        assert len(embedder.batches) == 2 and sum(embedder.batches) == 30  # 16 + 14, not 30 calls
        assert progress == list(range(1, 31))
        assert store.count() == 30
        assert any("Fact number 7" in t for t in search_texts(kb, "fact number 7", C1))
        # Second run: nothing changed, nothing written or embedded.
        store.calls.clear()
        embedder.batches.clear()
        again = kb.ingest_many(docs, C1)
        assert not any(r.changed for r in again) and store.calls == [] and embedder.batches == []
    finally:
        store.inner.close()


def test_ingest_many_handles_the_same_name_twice_like_two_uploads(kb, store):
    v1 = kb.load("leave.md", LEAVE_V1)
    v2 = kb.load("leave.md", LEAVE_V2)
    results = kb.ingest_many([v1, v2], C1)
    assert [(r.changed, r.replaced) for r in results] == [(True, False), (True, True)]
    assert store.count() == results[1].chunks
    assert store.document_hash(results[1].doc_id) == v2.content_hash


def test_ingest_many_embedding_failure_writes_no_partial_document(tmp_path):
    store = SpyStore(EdgeChunkStore(tmp_path / "fail"))
    try:
        kb = KnowledgeBase(store, FailingEmbeddings(fail_on_call=2), chunk_tokens=64, overlap_tokens=10)
        docs = small_docs(kb, 10)
        with pytest.raises(RuntimeError):
            kb.ingest_many(docs, C1, batch_chunks=4)
        # The first batch's documents were complete and are stored; nothing of the rest.
        stored = {d["source"] for d in kb.documents(C1)}
        assert stored == {f"note-{i}.md" for i in range(4)}
        assert store.count() == 4
    finally:
        store.inner.close()


def test_ingest_path_refuses_an_oversized_file_before_reading_it(store, tmp_path, monkeypatch):
    kb = KnowledgeBase(store, HashEmbeddings(), max_file_bytes=1024)
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 4096)

    def no_read(self):
        raise AssertionError("the file must not be read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(OversizedDocument, match="big.txt"):
        kb.ingest_path(path, C1)
    assert store.count() == 0


def test_a_loaded_document_without_sections_never_replaces_the_stored_one(kb, store):
    from knowledge.types import LoadedDocument

    first = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
    hollow = LoadedDocument(name="leave.md", title="Leave", sections=(), content_hash="different")
    with pytest.raises(EmptyDocument):
        kb.ingest_loaded(hollow, C1)
    with pytest.raises(EmptyDocument):
        kb.ingest_many([hollow], C1)
    assert store.count() == first.chunks
    assert store.document_hash(first.doc_id) == first.content_hash


# ---------------------------------------------------------------------------------------------
# A store write failing midway never leaves half a document


def test_a_replacement_failing_in_the_store_keeps_the_old_version_and_can_be_retried(tmp_path, small_batches):
    store = EdgeChunkStore(tmp_path / "edge")
    try:
        kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)
        first = kb.ingest_bytes("leave.md", LEAVE_V1, C1)
        store.backend = FailingBackend(store.backend, "upsert", fail_on=2)
        with pytest.raises(StoreFailure):
            kb.ingest_bytes("leave.md", LEAVE_V2, C1)
        store.backend = store.backend.inner
        assert store.document_hash(first.doc_id) == first.content_hash
        assert store.count() == first.chunks
        texts = search_texts(kb, "leave days per year", C1)
        assert any("twenty days" in t for t in texts) and not any("thirty" in t or "Parental" in t for t in texts)
        # The failed upload must not make the same upload look unchanged now.
        again = kb.ingest_bytes("leave.md", LEAVE_V2, C1)
        assert again.changed and again.replaced
        assert store.count() == again.chunks and store.document_hash(first.doc_id) == again.content_hash
    finally:
        store.close()


def test_a_new_document_failing_in_the_store_leaves_nothing(tmp_path, small_batches):
    store = EdgeChunkStore(tmp_path / "edge")
    try:
        kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)
        store.backend = FailingBackend(store.backend, "upsert", fail_on=2)
        with pytest.raises(StoreFailure):
            kb.ingest_bytes("leave.md", LEAVE_V2, C1)
        store.backend = store.backend.inner
        assert store.count() == 0 and kb.documents(C1) == [] and search_texts(kb, "parental leave", C1) == []
        assert store.versions() == []  # nothing pending left either
    finally:
        store.close()
