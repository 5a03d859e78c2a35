"""The bench runs end to end on small sizes with the hash embedder and reports every gauge."""

from __future__ import annotations

import random

from gauges.bench import build_synthetic_store, generated_documents, run_bench
from knowledge.embeddings import HashEmbeddings
from knowledge.types import Scope


def test_run_bench_reports_every_figure(tmp_path):
    stages = set()
    docs = generated_documents(random.Random(3), n=3, paragraphs=4)
    result = run_bench(
        embedder=HashEmbeddings(), work_dir=tmp_path, sizes=(300, 1200), queries=12, texts=docs,
        on_progress=lambda stage, done, total: stages.add(stage.split(":")[0]),
    )
    assert result["ingest_chunks"] > 3  # several chunks per generated document
    assert result["ingest_chunks_per_s"] > 0 and result["model_chunks_per_s"] > 0
    assert set(result["query_p50_ms"]) == {"300", "1200"} == set(result["query_p95_ms"]) == set(result["store_search_p95_ms"])
    for size in ("300", "1200"):
        assert 0 < result["query_p50_ms"][size] <= result["query_p95_ms"][size]
    assert 0 < result["query_embed_p50_ms"] <= result["query_embed_p95_ms"]
    assert 0 < result["rerank_p50_ms"] <= result["rerank_p95_ms"]
    assert result["query_cache_hits"] == 0  # generated queries never repeat: every figure paid the model
    assert (result["embedding_backend"], result["vector_space"]) == (None, "hash")
    assert result["peak_rss_mb"] > 50 and result["cores"] >= 1
    assert {"model", "ingest", "build", "query"} <= stages
    assert list(tmp_path.iterdir()) == []  # scratch stores are removed


def test_synthetic_store_spreads_chunks_over_scopes(tmp_path):
    store, _ = build_synthetic_store(2000, tmp_path / "s", dim=384)
    try:
        assert store.count() == 2000
        per_scope = {(w, c): len(store.documents(Scope(w, c)))
                     for w in ("T-bench-1", "T-bench-2") for c in ("C-eng", "C-ops", "*")}
        assert all(n > 0 for n in per_scope.values())
    finally:
        store.close()


def test_folder_ingest_runs_the_real_cli_in_a_fresh_data_dir(tmp_path, monkeypatch):
    from gauges.bench import measure_folder_ingest

    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")  # the child process: the fast test embedder
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "leave.md").write_text("# Leave\n\nAsk your supervisor two weeks ahead.\n")
    (docs / "sub" / "travel.md").write_text("# Travel\n\nBook through the travel desk; keep receipts.\n")
    (docs / "empty.txt").write_text(" \n")
    work = tmp_path / "work"
    work.mkdir()
    result = measure_folder_ingest(docs, work_dir=work)
    assert result["ingest_folder_documents"] == 2 and result["ingest_folder_chunks"] == 2
    assert result["ingest_folder_s"] > 0 and 30 < result["ingest_peak_rss_mb"] < 4000  # the child's, in MB
    assert list(work.iterdir()) == []  # the fresh data dir is removed


def test_a_childs_peak_rss_is_its_own_not_its_big_parents():
    import sys

    from gauges.bench import measure_command

    ballast = bytearray(600 << 20)  # this process: 600 MB resident
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    # The child holds its peak a moment, as any real ingest does (the mark is polled).
    child = "import time; b = bytearray(150 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.5); print('ok')"
    wall, rss_mb, out = measure_command([sys.executable, "-c", child])
    assert out.strip() == "ok" and wall > 0
    assert 150 <= rss_mb < 400, rss_mb  # the child's 150 MB and its interpreter, not the parent's 600
    del ballast
