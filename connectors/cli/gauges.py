"""`docent eval retrieval|qa|injection` and `docent bench`: thin commands over `gauges/`.

The platform load tests (Slack acks and exactly-once, Discord deferral) need the loopback fakes in
tests/fakes and run from a source checkout: `python -m tests.loadtests slack|discord`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from connectors.cli.common import app, eval_app, print_result, progress_bar, settings_for


def _embedder(settings):
    from knowledge.embeddings import make_embedder

    return make_embedder(
        settings.embedder, settings.embedding_model_path, settings.embedding_batch_size,
        backend=settings.embedding_backend, cache_dir=settings.embedding_cache_dir,
    )


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Path = typer.Option(..., "--beir", exists=True, file_okay=False, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    as_json: bool = typer.Option(False, "--json"),
):
    """nDCG@10, recall@10 and MRR@10 of the hybrid retriever on a BEIR data set."""
    from gauges.retrieval import evaluate_beir

    settings = settings_for()
    embedder = _embedder(settings)
    with progress_bar() as progress:
        task = progress.add_task("indexing", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=stage)

        result = evaluate_beir(beir, embedder=embedder, work_dir=settings.data_dir / "eval", on_progress=on_progress)
    print_result({"dataset": beir.name, "cores": os.cpu_count(), **result}, as_json)


@eval_app.command("qa")
def eval_qa(
    docs: Path = typer.Option(..., "--docs", exists=True, file_okay=False, help="Folder of documents."),
    questions: Path = typer.Option(..., "--questions", exists=True, dir_okay=False, help="JSONL: id, question, gold (paths relative to --docs), answerable."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Ask each question through the real answer path; recall of gold documents, abstention, latency."""
    from gauges.qa import evaluate_qa

    settings = settings_for()
    with progress_bar() as progress:
        task = progress.add_task("preparing", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        result = evaluate_qa(docs, questions, settings=settings, on_progress=on_progress)
    print_result(result, as_json)


@eval_app.command("injection")
def eval_injection(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL with text and label (1 = injection)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Detection and false-positive rates of the prompt-injection detector."""
    from bot.guards.injection import default_detector
    from gauges.injection import evaluate_injection_file

    settings = settings_for()
    print_result(evaluate_injection_file(file, default_detector(_embedder(settings))), as_json)


@app.command()
def bench(
    as_json: bool = typer.Option(False, "--json"),
    sizes: str = typer.Option("10000,100000", help="Chunk counts for the query latency benchmark."),
    queries: int = typer.Option(200, help="Queries per size."),
    corpus: Optional[Path] = typer.Option(
        None, help="Folder of real documents for the ingest benchmark (default: generated text)."
    ),
):
    """Throughput, latency and memory: ingest vs the raw model, scoped hybrid query latency."""
    from gauges.bench import run_bench

    settings = settings_for()
    try:
        sizes_n = tuple(int(s) for s in sizes.split(",") if s)
    except ValueError:
        raise typer.BadParameter("--sizes takes comma-separated whole numbers, e.g. 10000,100000") from None
    embedder = _embedder(settings)
    with progress_bar() as progress:
        task = progress.add_task("bench", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=stage)

        result = run_bench(
            embedder=embedder, work_dir=settings.data_dir / "bench", corpus_dir=corpus,
            sizes=sizes_n, queries=queries, on_progress=on_progress,
        )
    print_result(result, as_json)
