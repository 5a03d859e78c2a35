"""The query-embedding cache: a repeated question doesn't reach the model again, and vectors
of different embedders (models or backends) never meet."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from knowledge.edge_store import EdgeChunkStore
from bot.guards.injection import detect_many
from knowledge.embeddings import MINILM, HashEmbeddings
from knowledge.query_vectors import QUERY_VECTORS, QueryVectorCache
from knowledge.retriever import HybridRetriever
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks, vectors


class CountingEmbedder(HashEmbeddings):
    def __init__(self, backend: str = "", sign: float = 1.0):
        self.backend = backend
        self.sign = sign
        self.texts: list[str] = []

    def embed_array(self, texts):
        self.texts += list(texts)
        return self.sign * super().embed_array(texts)


def test_repeated_question_is_embedded_once():
    cache, embedder = QueryVectorCache(8), CountingEmbedder()
    first = cache.vector(embedder, "How many vacation days?")
    again = cache.vector(embedder, "  How many   vacation days?\n")  # the same words, other spacing
    assert embedder.texts == ["How many vacation days?"]
    assert again is first and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_allclose(first, HashEmbeddings().embed_array(["How many vacation days?"])[0])
    assert cache.vector(embedder, "how many vacation days?") is not first  # case is the model's business
    assert len(embedder.texts) == 2


def test_other_backend_or_model_never_shares_entries():
    cache = QueryVectorCache(8)
    int8, fp32 = CountingEmbedder("onnx-int8"), CountingEmbedder("onnx", sign=-1.0)
    a = cache.vector(int8, "travel policy")
    b = cache.vector(fp32, "travel policy")
    assert int8.texts == fp32.texts == ["travel policy"]
    np.testing.assert_allclose(b, -a)
    other_model = CountingEmbedder("onnx-int8")
    other_model.model_name = "another-model"
    cache.vector(other_model, "travel policy")
    assert other_model.texts == ["travel policy"] and len(cache) == 3


def test_cache_is_bounded_and_keeps_recent_questions():
    cache, embedder = QueryVectorCache(2), CountingEmbedder()
    cache.vector(embedder, "a one")
    cache.vector(embedder, "b two")
    cache.vector(embedder, "a one")  # refreshes "a one"
    cache.vector(embedder, "c three")  # evicts "b two", the least recent
    assert len(cache) == 2
    cache.vector(embedder, "a one")
    cache.vector(embedder, "b two")
    assert embedder.texts == ["a one", "b two", "c three", "b two"]


def test_cached_vectors_are_read_only():
    cache = QueryVectorCache(4)
    vector = cache.vector(CountingEmbedder(), "budget")
    with pytest.raises(ValueError):
        vector[0] = 5.0


def test_size_zero_turns_the_cache_off():
    cache, embedder = QueryVectorCache(0), CountingEmbedder()
    cache.vector(embedder, "x y")
    cache.vector(embedder, "x y")
    assert embedder.texts == ["x y", "x y"] and len(cache) == 0


def test_concurrent_askers_get_the_same_vector():
    cache, embedder = QueryVectorCache(16), CountingEmbedder()
    out: list[np.ndarray] = []

    def ask():
        for _ in range(50):
            out.append(cache.vector(embedder, "shared question"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 200 and all(np.array_equal(v, out[0]) for v in out)
    assert cache.hits + cache.misses == 200 and len(cache) == 1


def test_retrievers_share_the_cache_across_scopes(tmp_path):
    store = EdgeChunkStore(tmp_path / "edge")
    try:
        for scope in (Scope("T1", "C1"), Scope("T1", "C2")):
            chunks = make_chunks(scope, "travel.md", ["Travel per diem is fifty dollars"])
            store.add(chunks, vectors(chunks))
        cache, embedder = QueryVectorCache(8), CountingEmbedder()
        hits = [
            HybridRetriever(store=store, embedder=embedder, scope=Scope("T1", c), query_vectors=cache).search("per diem")
            for c in ("C1", "C2", "C1")
        ]
        assert embedder.texts == ["per diem"]
        assert [h[0].chunk.scope.channel for h in hits] == ["C1", "C2", "C1"]  # the scope still filters
        uncached = HybridRetriever(store=store, embedder=embedder, scope=Scope("T1", "C1"), query_vectors=None)
        uncached.search("per diem")
        assert embedder.texts == ["per diem", "per diem"]
    finally:
        store.close()


class CountingMiniLMStandIn(CountingEmbedder):
    """Declares MiniLM's identity, so the injection classifier (trained for it) takes part."""

    model_name = MINILM


def test_the_injection_guard_and_retrieval_embed_an_asked_question_once(tmp_path):
    from bot.guards.injection import CombinedDetector, default_detector

    QUERY_VECTORS.clear()
    embedder = CountingMiniLMStandIn()
    detector = default_detector(embedder)
    assert isinstance(detector, CombinedDetector)  # the embedding classifier is one of its layers
    store = EdgeChunkStore(tmp_path / "edge")
    try:
        chunks = make_chunks(Scope("T1", "C1"), "travel.md", ["Travel per diem is fifty dollars"])
        store.add(chunks, vectors(chunks))
        question = "what is the per diem for a trip to chicago?"
        detector.detect(question)
        HybridRetriever(store=store, embedder=embedder, scope=Scope("T1", "C1")).search(question)
        assert embedder.texts == [question]
        # A batch (an evaluation run) goes straight to the model and leaves the cache alone.
        detect_many(detector, ["first question here", "second question here"])
        assert embedder.texts[1:] == ["first question here", "second question here"]
        assert len(QUERY_VECTORS) == 1
    finally:
        store.close()
        QUERY_VECTORS.clear()
