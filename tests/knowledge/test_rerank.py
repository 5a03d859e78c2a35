"""The sentence reranker: a passage that states the asked fact in one sentence goes ahead of one
that is only about the topic; the search returns the same first hits whatever k; the answerability
score reads the store's order, not the reranked one, and the sentence vectors the reranker computed
instead of embedding them again."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from knowledge.answerability import AnswerabilityFeatures
from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.query_vectors import QueryVectorCache
from knowledge.rerank import SentenceReranker
from knowledge.retriever import HybridRetriever
from knowledge.types import Hit, Scope
from tests.knowledge.conftest import make_chunks, vectors

SCOPE = Scope("T1", "C1")


class CountingEmbedder(HashEmbeddings):
    def __init__(self):
        self.texts: list[str] = []

    def embed_array(self, texts):
        self.texts += list(texts)
        return super().embed_array(texts)


def _hits(texts_and_scores):
    chunks = make_chunks(SCOPE, "doc.md", [t for t, _ in texts_and_scores])
    return [Hit(chunk=c, score=s, dense_score=s) for c, (_, s) in zip(chunks, texts_and_scores)]


OVERVIEW = ("Travel in the Boston office is common. Travel plans for Boston staff go through the travel team. "
            "Boston travel is planned monthly.")
FACT = "Meals are covered on trips. The per diem rate in Boston is 79 dollars a day. Receipts are kept."
QUESTION = "what is the per diem rate in boston"


def test_the_passage_stating_the_fact_goes_ahead_of_the_overview():
    embedder = HashEmbeddings()
    hits = _hits([(OVERVIEW, 0.60), (FACT, 0.55), ("Unrelated words about parking garages here.", 0.50)])
    q = embedder.embed_array([QUESTION])[0]
    reranker = SentenceReranker(embedder, depth=10, weight=0.35, sentence_vectors=QueryVectorCache(64))
    best = reranker.best_sentence_cosines(q, hits)
    assert best[1] > best[0] > best[2]
    out = reranker.rerank(q, hits)
    assert [h.chunk.text for h in out] == [FACT, OVERVIEW, hits[2].chunk.text]
    # The blended score is what ordered them, and it is the hit's score now.
    assert out[0].score == pytest.approx(0.65 * 0.55 + 0.35 * best[1])
    assert out[0].dense_score == 0.55  # the chunk's own cosine is kept


def test_only_the_first_depth_hits_move_and_weight_zero_or_depth_one_is_off():
    embedder = HashEmbeddings()
    hits = _hits([(OVERVIEW, 0.60), ("Parking garages open at seven in the morning.", 0.58), (FACT, 0.55)])
    q = embedder.embed_array([QUESTION])[0]
    two = SentenceReranker(embedder, depth=2, weight=0.35, sentence_vectors=None).rerank(q, hits)
    assert two[2] is hits[2]  # beyond the depth: untouched, even though it states the fact
    for off in (SentenceReranker(embedder, depth=1), SentenceReranker(embedder, depth=10, weight=0.0)):
        assert not off.active and off.rerank(q, hits) == hits
    with pytest.raises(ValueError):
        SentenceReranker(embedder, depth=-1)
    with pytest.raises(ValueError):
        SentenceReranker(embedder, weight=1.5)


def test_a_hit_without_a_full_sentence_scores_its_chunk_cosine():
    embedder = HashEmbeddings()
    hits = _hits([("Boston: 79", 0.42), (FACT, 0.40)])
    q = embedder.embed_array([QUESTION])[0]
    assert SentenceReranker(embedder).best_sentence_cosines(q, hits)[0] == pytest.approx(0.42)


@pytest.fixture
def store(tmp_path):
    s = EdgeChunkStore(tmp_path / "edge")
    texts = [OVERVIEW, FACT] + [f"Filler page {i} about boston parking and office plants number {i}." for i in range(14)]
    chunks = make_chunks(SCOPE, "travel.md", texts)
    s.add(chunks, vectors(chunks))
    yield s
    s.close()


def test_search_reranks_and_gives_the_same_first_hits_whatever_k(store):
    embedder = HashEmbeddings()
    plain = HybridRetriever(store=store, embedder=embedder, scope=SCOPE)
    reranked = HybridRetriever(store=store, embedder=embedder, scope=SCOPE,
                               reranker=SentenceReranker(embedder, sentence_vectors=QueryVectorCache(256)))
    five = reranked.search(QUESTION)
    assert len(five) == 5
    assert [h.chunk.chunk_index for h in reranked.search(QUESTION, k=12)[:5]] == [h.chunk.chunk_index for h in five]
    assert five[0].chunk.text == FACT
    # Without the reranker the order is the store's; the reranker only reorders what it returns.
    ten = {h.chunk.chunk_index for h in plain.search(QUESTION, k=10)}
    assert {h.chunk.chunk_index for h in reranked.search(QUESTION, k=10)} == ten



def test_by_sentence_alone_the_order_is_the_best_sentences_not_the_stores(tmp_path):
    # Stored vectors unrelated to the sentences' (random): the store's order is not the sentences'.
    embedder = HashEmbeddings()
    store = EdgeChunkStore(tmp_path / "edge")
    texts = [OVERVIEW, FACT] + [f"Filler page {i} about boston parking and office plants number {i}." for i in range(14)]
    chunks = make_chunks(SCOPE, "travel.md", texts)
    rng = np.random.default_rng(0)
    random_vectors = rng.normal(size=(len(chunks), embedder.dim)).astype(np.float32)
    store.add(chunks, random_vectors / np.linalg.norm(random_vectors, axis=1, keepdims=True))
    plain = HybridRetriever(store=store, embedder=embedder, scope=SCOPE)
    by_sentence = HybridRetriever(store=store, embedder=embedder, scope=SCOPE,
                                  reranker=SentenceReranker(embedder, weight=1.0, sentence_vectors=None))
    store_ten = plain.search(QUESTION, k=10)
    best = SentenceReranker(embedder).best_sentence_cosines(embedder.embed_array([QUESTION])[0], store_ten)
    expected = [store_ten[i].chunk.chunk_index for i in sorted(range(10), key=lambda i: (-best[i], i))]
    got = [h.chunk.chunk_index for h in by_sentence.search(QUESTION, k=10)]
    assert got == expected
    assert got != [h.chunk.chunk_index for h in store_ten]
    store.close()


def test_the_gate_reads_the_sentence_vectors_the_reranker_computed(store):
    embedder = CountingEmbedder()
    queries, sentences = QueryVectorCache(16), QueryVectorCache(256)
    retriever = HybridRetriever(store=store, embedder=embedder, scope=SCOPE, query_vectors=queries,
                                reranker=SentenceReranker(embedder, sentence_vectors=sentences))
    hits = retriever.gate_hits(QUESTION, retriever.search(QUESTION))
    embedded = len(embedder.texts)
    assert embedder.texts.count(QUESTION) == 1
    features, best = AnswerabilityFeatures(embedder, query_vectors=queries, sentence_vectors=sentences).extract(QUESTION, hits)
    assert len(embedder.texts) == embedded  # nothing embedded again
    assert best == "The per diem rate in Boston is 79 dollars a day."
    # The same features as embedding everything afresh.
    fresh, _ = AnswerabilityFeatures(HashEmbeddings(), query_vectors=None, sentence_vectors=None).extract(QUESTION, hits)
    assert features == pytest.approx(fresh)


def test_the_vector_cache_embeds_each_missing_text_once_in_one_batch():
    embedder, cache = CountingEmbedder(), QueryVectorCache(8)
    first = cache.vectors(embedder, ["a b c", "d e f", "a b c"])
    assert embedder.texts == ["a b c", "d e f"]
    np.testing.assert_allclose(first[0], first[2])
    again = cache.vectors(embedder, ["d e f", "g h i"])
    assert embedder.texts == ["a b c", "d e f", "g h i"]
    np.testing.assert_allclose(again[0], first[1])
    assert cache.vectors(embedder, []).shape == (0, embedder.dim)
    assert (cache.hits, cache.misses) == (2, 3)
    # Each cached row is its own read-only array, not a view that keeps its whole batch alive.
    assert all(v.base is None and not v.flags.writeable for v in cache._entries.values())


def test_the_gate_reads_the_stores_order_of_the_same_query_not_the_reranked_one(store):
    embedder = HashEmbeddings()
    plain = HybridRetriever(store=store, embedder=embedder, scope=SCOPE)

    class Reverse(SentenceReranker):
        def rerank(self, query_vector, hits):
            return [replace(h, score=-h.score) for h in reversed(hits)]

    reranked = HybridRetriever(store=store, embedder=embedder, scope=SCOPE, reranker=Reverse(embedder))
    hits = reranked.search(QUESTION)
    store_order = [h.chunk.chunk_index for h in plain.search(QUESTION)]
    assert [h.chunk.chunk_index for h in hits] != store_order  # the reranker moved something
    gate = reranked.gate_hits(QUESTION, hits)
    assert [h.chunk.chunk_index for h in gate] == store_order
    assert all(g.score == p.score for g, p in zip(gate, plain.search(QUESTION)))  # fused scores, not blended
    # Hits the retriever did not just search for are read as given.
    assert reranked.gate_hits("another question", hits) == hits
    assert HybridRetriever(store=store, embedder=embedder, scope=SCOPE).gate_hits(QUESTION, hits) == hits
