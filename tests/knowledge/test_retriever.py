"""HybridRetriever with the fast hash embedder on a real Edge store."""

from __future__ import annotations

import socket

import pytest
from langchain_core.documents import Document

from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.retriever import HybridRetriever
from knowledge.server_store import QdrantServerStore
from knowledge.stores import open_store
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks, vectors


@pytest.fixture
def store(tmp_path):
    s = EdgeChunkStore(tmp_path / "edge")
    for scope, name, texts in [
        (Scope("T1", "C1"), "travel.md", ["Travel per diem is fifty dollars", "Book flights through the portal"]),
        (Scope("T1", "C2"), "secret.md", ["Merger codename is falcon travel plans"]),
        (Scope.workspace_wide("T1"), "handbook.md", ["Vacation leave accrues monthly", "Travel insurance is included"]),
    ]:
        chunks = make_chunks(scope, name, texts)
        s.add(chunks, vectors(chunks))
    yield s
    s.close()


def _retriever(store, scope, **kw):
    return HybridRetriever(store=store, embedder=HashEmbeddings(), scope=scope, **kw)


def test_invoke_returns_documents_with_payload_and_scores(store):
    docs = _retriever(store, Scope("T1", "C1"), k=3).invoke("travel per diem")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 3
    assert docs[0].page_content == "Travel per diem is fifty dollars"
    meta = docs[0].metadata
    assert meta["source"] == "travel.md" and meta["channel"] == "C1" and meta["chunk_index"] == 0
    assert meta["score"] > 0 and meta["dense_score"] > 0.3 and meta["sparse_score"] > 0
    assert "secret.md" not in {d.metadata["source"] for d in docs}


def test_search_is_scoped_and_k_overridable(store):
    dm = _retriever(store, Scope("T1", None))
    assert {h.chunk.source for h in dm.search("travel", k=10)} == {"handbook.md"}
    c2 = _retriever(store, Scope("T1", "C2"))
    assert {h.chunk.source for h in c2.search("travel", k=10)} == {"secret.md", "handbook.md"}
    assert len(c2.search("travel", k=1)) == 1
    assert c2.search("   ") == []


def test_answerable_uses_best_dense_cosine(store):
    r = _retriever(store, Scope("T1", "C1"), relevance_threshold=0.5)
    assert r.answerable(r.search("travel per diem is fifty dollars"))
    assert not r.answerable(r.search("quantum chromodynamics lattice"))
    assert not r.answerable([])
    strict = _retriever(store, Scope("T1", "C1"), relevance_threshold=1.01)
    assert not strict.answerable(strict.search("travel per diem is fifty dollars"))


def test_open_store_defaults_to_edge(tmp_path):
    s = open_store(qdrant_url=None, edge_path=tmp_path / "edge")
    try:
        assert isinstance(s, EdgeChunkStore) and s.count() == 0
    finally:
        s.close()


def test_open_store_with_unreachable_server_says_where(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        open_store(qdrant_url=url, edge_path=tmp_path / "edge", api_key="sekret")


def test_server_store_needs_exactly_one_location():
    with pytest.raises(ValueError):
        QdrantServerStore()
    with pytest.raises(ValueError):
        QdrantServerStore("http://x", location=":memory:")
