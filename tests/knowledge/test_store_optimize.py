"""Sealing the store: after `optimize` the Edge shard searches int8 copies with a float rescore,
and must return what the exact scan of the append log returned — same hits, same cosines."""

from __future__ import annotations

import numpy as np
import pytest

import knowledge.store as store_module
from knowledge.edge_store import EdgeChunkStore
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks, qvec, vectors

# Enough points to pass the shard's indexing threshold (10 MB of 384-d float vectors ≈ 6.7k).
N_DOCS, PER_DOC = 120, 60
WORDS = ("budget travel leave laptop badge payroll hiring office review training security "
         "expense contract vendor onboarding benefits holiday parking printer wifi").split()


def _texts(doc: int) -> list[str]:
    rng = np.random.default_rng(doc)
    return [" ".join(rng.choice(WORDS, size=12)) + f" doc{doc} part{i}" for i in range(PER_DOC)]


@pytest.fixture
def big_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "OPTIMIZE_AFTER", 10**9)  # seal only when the test says so
    store = EdgeChunkStore(tmp_path / "edge")
    for doc in range(N_DOCS):
        scope = Scope("T1", ("C1", "C2", None)[doc % 3])
        chunks = make_chunks(scope, f"doc{doc}.md", _texts(doc))
        store.add(chunks, vectors(chunks))
    yield store
    store.close()


QUERIES = [("travel budget for the holiday", Scope("T1", "C1")), ("badge printer wifi", Scope("T1", "C2")),
           ("payroll review contract", Scope("T1", None)), ("doc7 part3 laptop", Scope("T1", "C1"))]


def _search(store):
    return [[(h.chunk.doc_id, h.chunk.chunk_index, round(h.dense_score, 5), h.sparse_score is not None)
             for h in store.search(q, qvec(q), scope, 8)] for q, scope in QUERIES]


def test_sealed_segments_answer_exactly_what_the_append_log_did(big_store):
    before = _search(big_store)
    segments_before = big_store.backend.shard.info().segments_count
    big_store.optimize()
    info = big_store.backend.shard.info()
    assert info.points_count == N_DOCS * PER_DOC
    assert info.segments_count > segments_before  # the log was sealed and a fresh one opened
    assert list(big_store.path.glob("segments/*/vector_storage-*/quantized.config.json"))  # int8 copies built
    assert _search(big_store) == before
    # Every hit's cosine is the exact one, whether the dense side or the BM25 side found it.
    for q, scope in QUERIES:
        for h in big_store.search(q, qvec(q), scope, 8):
            exact = float(vectors([h.chunk])[0] @ qvec(q))
            assert h.dense_score == pytest.approx(exact, abs=1e-5)


def test_writes_after_sealing_are_searchable_and_replace_what_was_sealed(big_store):
    big_store.optimize()
    scope = Scope("T1", "C1")
    new = make_chunks(scope, "doc0.md", ["zebra crossing rules for the parking garage"], content_hash="v2")
    big_store.replace_document(new[0].doc_id, new, vectors(new))
    hits = big_store.search("zebra crossing parking", qvec("zebra crossing parking"), scope, 3)
    assert hits[0].chunk.text.startswith("zebra")
    assert all(h.chunk.content_hash == "v2" for h in hits if h.chunk.doc_id == new[0].doc_id)
    assert big_store.count() == N_DOCS * PER_DOC - PER_DOC + 1


def test_a_bulk_load_seals_itself_every_so_many_points(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "OPTIMIZE_AFTER", 100)
    store = EdgeChunkStore(tmp_path / "edge")
    calls = []
    real = store.backend.optimize
    monkeypatch.setattr(store.backend, "optimize", lambda: (calls.append(1), real())[1])
    try:
        for doc in range(5):
            chunks = make_chunks(Scope("T1", None), f"d{doc}.md", _texts(doc))  # 60 points each
            store.add(chunks, vectors(chunks))
        assert len(calls) == 2  # after 120 and after 240 points
    finally:
        store.close()
