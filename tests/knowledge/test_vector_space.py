"""A store remembers the vector space of its chunks; opening it with another one re-embeds every
stored chunk from its payload (real Qdrant Edge, qdrant-client local mode, real Docent core)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from bot.core import Docent
from admin.types import Actor
from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.ingest import KnowledgeBase, embedding_text
from knowledge.server_store import QdrantServerStore
from knowledge.types import Scope
from knowledge.vector_space import LEGACY_SPACE, RECORD_FILE, reconcile_vector_space

SCOPE = Scope("T1", "C1")
DOC = b"""# Leave policy

Employees accrue 20 vacation days per year. Up to 5 unused vacation days carry over.

# Travel

Book airfare in economy class through the approved agency; trains for trips under four hours.
"""


class OtherBackend(HashEmbeddings):
    """Another 'backend' of the same model: related but different vectors (rotated hash space)."""

    backend = "other"

    def embed_array(self, texts):
        return np.roll(super().embed_array(texts), 7, axis=1)


def _stored_dense_scores(store, embedder, query: str) -> list[tuple[float, float]]:
    """(stored dense score, cosine under `embedder`) for every hit of `query`."""
    hits = store.search(query, embedder.embed_array([query])[0], SCOPE, limit=10)
    assert hits
    q = embedder.embed_array([query])[0]
    return [(h.dense_score, float(q @ embedder.embed_array([embedding_text(h.chunk)])[0])) for h in hits]


def _ingest(store, embedder) -> int:
    kb = KnowledgeBase(store, embedder)
    return kb.ingest_bytes("policy.md", DOC, SCOPE).chunks


def test_first_open_of_an_empty_store_records_its_space(tmp_path):
    with EdgeChunkStore(tmp_path / "edge") as store:
        check = reconcile_vector_space(store, OtherBackend(), tmp_path / RECORD_FILE, store_key="qdrant-edge")
    assert (check.previous, check.current, check.reembedded) == (None, "hash/other", 0)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["stores"]["qdrant-edge"] == {"vector_space": "hash/other"}


def test_opening_with_another_space_reembeds_every_chunk_from_its_payload(tmp_path, caplog):
    record = tmp_path / RECORD_FILE
    with EdgeChunkStore(tmp_path / "edge") as store:
        reconcile_vector_space(store, HashEmbeddings(), record, store_key="qdrant-edge")
        n = _ingest(store, HashEmbeddings())
    other = OtherBackend()
    with EdgeChunkStore(tmp_path / "edge") as store:
        before = _stored_dense_scores(store, other, "vacation days carry over")
        assert any(abs(stored - fresh) > 1e-3 for stored, fresh in before)  # mixed spaces disagree
        with caplog.at_level(logging.INFO, logger="knowledge.vector_space"):
            check = reconcile_vector_space(store, other, record, store_key="qdrant-edge")
        assert (check.previous, check.current, check.reembedded) == ("hash", "hash/other", n)
        assert store.count() == n  # overwritten in place, not duplicated
        for stored, fresh in _stored_dense_scores(store, other, "vacation days carry over"):
            assert stored == pytest.approx(fresh, abs=1e-4)
    assert any("re-embedding" in r.getMessage() and "hash → hash/other" in r.getMessage() for r in caplog.records)
    assert json.loads(record.read_text())["stores"]["qdrant-edge"] == {"vector_space": "hash/other"}
    with EdgeChunkStore(tmp_path / "edge") as store:  # same space again: nothing to do
        assert reconcile_vector_space(store, other, record, store_key="qdrant-edge").reembedded == 0


def test_an_interrupted_reembedding_is_redone_whole(tmp_path):
    record = tmp_path / RECORD_FILE
    with EdgeChunkStore(tmp_path / "edge") as store:
        n = _ingest(store, HashEmbeddings())
        # What a crash half way through leaves: the mark, some chunks in each space.
        record.write_text(json.dumps({"stores": {"qdrant-edge": {"vector_space": "hash", "reembedding_to": "hash/other"}}}))
        check = reconcile_vector_space(store, HashEmbeddings(), record, store_key="qdrant-edge")
    assert check.reembedded == n
    assert json.loads(record.read_text())["stores"]["qdrant-edge"] == {"vector_space": "hash"}


def test_a_store_from_before_records_is_taken_as_torch_minilm(tmp_path):
    with EdgeChunkStore(tmp_path / "edge") as store:
        n = _ingest(store, HashEmbeddings())
        check = reconcile_vector_space(store, OtherBackend(), tmp_path / RECORD_FILE, store_key="qdrant-edge")
    assert (check.previous, check.reembedded) == (LEGACY_SPACE, n)


def test_server_store_records_are_kept_apart_and_reembedded(tmp_path):
    record = tmp_path / RECORD_FILE
    store = QdrantServerStore(location=":memory:", collection="docs")
    try:
        reconcile_vector_space(store, HashEmbeddings(), record, store_key="qdrant:http://q:6333/docs")
        n = _ingest(store, HashEmbeddings())
        check = reconcile_vector_space(store, OtherBackend(), record, store_key="qdrant:http://q:6333/docs")
        assert check.reembedded == n and store.count() == n
        for stored, fresh in _stored_dense_scores(store, OtherBackend(), "economy airfare"):
            assert stored == pytest.approx(fresh, abs=1e-4)
    finally:
        store.close()
    with EdgeChunkStore(tmp_path / "edge") as edge:  # another store in the same data dir
        assert reconcile_vector_space(edge, HashEmbeddings(), record, store_key="qdrant-edge").previous is None
    assert set(json.loads(record.read_text())["stores"]) == {"qdrant:http://q:6333/docs", "qdrant-edge"}


def test_docent_reopened_with_another_backend_answers_from_reembedded_chunks(settings, caplog):
    actor = Actor("cli", "T1", "admin", is_platform_admin=True)
    with Docent.from_settings(settings, embedder=HashEmbeddings()) as docent:
        docent.admin.upload(actor, "policy.md", DOC, SCOPE)
    with caplog.at_level(logging.INFO, logger="knowledge.vector_space"):
        docent = Docent.from_settings(settings, embedder=OtherBackend())
    try:
        assert any("re-embedded" in r.getMessage() for r in caplog.records)
        hits = docent.retriever(SCOPE).search("How many vacation days carry over?")
        assert hits and "vacation" in hits[0].chunk.text
        q = docent.embedder.embed_array(["How many vacation days carry over?"])[0]
        fresh = float(q @ docent.embedder.embed_array([embedding_text(hits[0].chunk)])[0])
        assert hits[0].dense_score == pytest.approx(fresh, abs=1e-4)
    finally:
        docent.close()
    record = json.loads((settings.data_dir / RECORD_FILE).read_text())
    assert record["stores"]["qdrant-edge"]["vector_space"] == "hash/other"
