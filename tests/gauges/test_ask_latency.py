"""`python -m gauges.ask_latency`: every timed ask starts from empty vector caches, and the two
settings alternate so both see the same load."""

from __future__ import annotations

import json

from gauges.ask_latency import cold_ask_latency, main, percentile, summary
from gauges.qa import eval_docent, load_links, load_questions
from knowledge import query_vectors
from knowledge.rerank import SentenceReranker
from tests.gauges.test_qa import corpus  # noqa: F401  (the fixture: two pages, one linked to #hiring)


def test_each_ask_is_timed_cold_and_the_settings_alternate(settings, corpus, monkeypatch):  # noqa: F811
    docs, questions, links = corpus
    rows = load_questions(questions)
    with eval_docent(docs, load_links(links), settings=settings) as (docent, _):
        order, cached_at_start = [], []
        ask = docent.ask

        def spied(q):
            order.append("rerank" if docent.reranker is not None else "plain")
            cached_at_start.append(len(query_vectors.QUERY_VECTORS) + len(query_vectors.SENTENCE_VECTORS))
            return ask(q)

        monkeypatch.setattr(docent, "ask", spied)
        latencies = cold_ask_latency(docent, rows, {"rerank": SentenceReranker(docent.embedder), "plain": None})
    timed = order[min(3, len(rows)):]  # after the warm-up asks
    assert timed == ["rerank", "plain", "plain", "rerank", "rerank", "plain", "plain", "rerank"]
    assert cached_at_start[min(3, len(rows)):] == [0] * len(timed)
    assert len(latencies["rerank"]) == len(latencies["plain"]) == len(rows)
    assert all(v > 0 for v in latencies["rerank"] + latencies["plain"])


def test_summary_reports_percentiles_and_the_ratio():
    result = summary({"rerank": [10.0, 20.0, 30.0], "plain": [5.0, 10.0, 15.0]})
    assert result["rerank_p50_ms"] == 20.0 and result["plain_p50_ms"] == 10.0
    assert result["rerank_over_plain_p50"] == 2.0
    assert result["questions"] == 3
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 0.95) == 100.0


def test_the_command_prints_json(settings, corpus, monkeypatch, capsys):  # noqa: F811
    docs, questions, links = corpus
    monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    assert main(["--docs", str(docs), "--questions", str(questions), "--links", str(links), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 4 and result["rerank_p50_ms"] > 0 and result["plain_p50_ms"] > 0
    assert result["rerank"] == {"depth": 10, "weight": 0.1}
