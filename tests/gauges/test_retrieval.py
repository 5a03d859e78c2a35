"""Retrieval metrics on hand-computed examples, and the BEIR gauge end to end on a tiny set."""

from __future__ import annotations

import json

import pytest

from knowledge.embeddings import HashEmbeddings
from gauges.retrieval import (
    evaluate_beir,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    split_passages,
)


def test_ndcg_binary_hand_computed():
    # DCG = 1/log2(2) + 1/log2(4) = 1.5 ; IDCG = 1 + 1/log2(3) = 1.63093
    assert ndcg_at_k(["a", "b", "c"], {"a": 1, "c": 1}, 10) == pytest.approx(1.5 / 1.6309298, rel=1e-6)


def test_ndcg_graded_hand_computed():
    # DCG = 1/1 + 2/log2(3) = 2.26186 ; IDCG = 2/1 + 1/log2(3) = 2.63093
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx(2.2618595 / 2.6309298, rel=1e-6)


def test_ndcg_edges():
    assert ndcg_at_k(["a"], {"a": 1}, 10) == 1.0
    assert ndcg_at_k(["x", "y"], {"a": 1}, 10) == 0.0
    assert ndcg_at_k(["a"], {}, 10) == 0.0
    assert ndcg_at_k(["x", "a"], {"a": 1}, 1) == 0.0  # cut at k
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 0}, 10) == 1.0  # grade 0 is not relevant


def test_recall_and_mrr_hand_computed():
    rel = {"a": 1, "c": 1, "d": 1}
    assert recall_at_k(["a", "b"], rel, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "c", "d"], rel, 10) == 1.0
    assert mrr_at_k(["x", "y", "c"], rel, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "c"], rel, 2) == 0.0


def test_split_passages_even_and_titled():
    words = " ".join(f"w{i}" for i in range(450))
    parts = split_passages("Title", words, max_words=200)
    assert len(parts) == 3 and all(p.startswith("Title\n") for p in parts)
    assert sum(len(p.split()) - 1 for p in parts) == 450
    assert split_passages("", "short text") == ["short text"]


def _tiny_beir(root):
    docs = {
        "d1": ("Llamas", "Llamas are domesticated South American camelids used as pack animals."),
        "d2": ("Volcanoes", "A volcano is a rupture in the crust of a planet where lava escapes."),
        "d3": ("Bread", "Bread is a staple food prepared from a dough of flour and water."),
        "d4": ("Tides", "Tides are the rise and fall of sea levels caused by the moon's gravity."),
    }
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in docs.items())
    )
    queries = {"q1": "pack animals llamas camelids", "q2": "lava volcano crust", "q3": "moon gravity sea tides",
               "q9": "unjudged query"}
    (root / "queries.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": v}) for k, v in queries.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq3\td4\t1\n")


def test_load_beir_keeps_only_judged_queries(tmp_path):
    _tiny_beir(tmp_path / "set")
    data = load_beir(tmp_path / "set")
    assert sorted(data.queries) == ["q1", "q2", "q3"]
    assert data.qrels["q2"] == {"d2": 2.0}
    assert len(data.corpus) == 4


def test_evaluate_beir_end_to_end_and_cache(tmp_path):
    _tiny_beir(tmp_path / "set")

    class CountingEmbedder(HashEmbeddings):
        calls = 0

        def embed_array(self, texts):
            CountingEmbedder.calls += len(texts)
            return super().embed_array(texts)

    emb = CountingEmbedder()
    result = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10)
    assert result["n_queries"] == 3 and result["n_docs"] == 4
    assert result["ndcg@10"] == 1.0 and result["recall@10"] == 1.0 and result["mrr@10"] == 1.0
    first = CountingEmbedder.calls
    again = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10)
    assert again == result
    assert CountingEmbedder.calls == first  # corpus and queries came from the cache


def test_cached_embeddings_are_not_shared_across_backends_of_one_model(tmp_path):
    """Regression: the cache was keyed by the model folder only, so an int8 run reused fp32 vectors."""
    _tiny_beir(tmp_path / "set")
    embedded: dict[str, int] = {}

    class Backend(HashEmbeddings):
        model_path = "/models/all-MiniLM-L6-v2"  # the same packaged folder for every backend
        model_name = "all-MiniLM-L6-v2"

        def __init__(self, backend: str):
            self.backend = backend

        def embed_array(self, texts):
            embedded[self.backend] = embedded.get(self.backend, 0) + len(texts)
            return super().embed_array(texts)

    for backend in ("torch", "onnx-int8", "torch"):
        evaluate_beir(tmp_path / "set", embedder=Backend(backend), work_dir=tmp_path / "work", k=10)
    assert embedded["onnx-int8"] == embedded["torch"] > 0  # int8 embedded its own; torch's 2nd run hit its cache


def test_evaluate_beir_reranks_each_search_as_the_answer_path_does(tmp_path):
    from knowledge.rerank import SentenceReranker

    _tiny_beir(tmp_path / "set")

    class Spy(SentenceReranker):
        seen: list[int] = []

        def rerank(self, query_vector, hits):
            Spy.seen.append(len(hits))
            return super().rerank(query_vector, hits)

    emb = HashEmbeddings()
    result = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10,
                           reranker=Spy(emb, depth=10, weight=1.0, sentence_vectors=None))
    assert len(Spy.seen) == result["n_queries"] == 3 and all(n >= 1 for n in Spy.seen)
    assert result["ndcg@10"] == 1.0  # the tiny set's answers stay first when ranked by their best sentence

    class Last(SentenceReranker):  # puts the best hit last: the figures must show the reranked order
        def rerank(self, query_vector, hits):
            return hits[1:] + hits[:1]

    worse = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10, reranker=Last(emb))
    assert worse["mrr@10"] < 1.0 and worse["ndcg@10"] < result["ndcg@10"]


def test_evaluate_beir_corrects_misspelled_queries_as_questions_are(tmp_path):
    _tiny_beir(tmp_path / "set")
    queries = tmp_path / "set" / "queries.jsonl"
    queries.write_text(queries.read_text().replace("lava volcano crust", "volcnao crusst"))

    class CountingEmbedder(HashEmbeddings):
        texts: list[str] = []

        def embed_array(self, texts):
            CountingEmbedder.texts += list(texts)
            return super().embed_array(texts)

    emb = CountingEmbedder()
    plain = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10)
    assert plain["spelling_corrected"] is None and "volcano crust" not in CountingEmbedder.texts
    fixed = evaluate_beir(tmp_path / "set", embedder=emb, work_dir=tmp_path / "work", k=10, spelling=True)
    assert fixed["spelling_corrected"] == 1
    assert CountingEmbedder.texts[-1] == "volcano crust"  # searched and embedded as corrected
