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
    rerank: bool = typer.Option(True, "--rerank/--no-rerank", help="Reorder the best candidates by their best sentence, as answers do (DOCENT_RERANK_DEPTH, DOCENT_RERANK_WEIGHT)."),
    spelling: bool = typer.Option(True, "--spelling/--no-spelling", help="Correct misspelled query words to the corpus's words first, as questions are (DOCENT_SPELLING)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """nDCG@10, recall@10 and MRR@10 of the hybrid retriever on a BEIR data set."""
    from gauges.retrieval import evaluate_beir
    from knowledge.rerank import SentenceReranker

    settings = settings_for()
    embedder = _embedder(settings)
    reranker = SentenceReranker(embedder, depth=settings.rerank_depth, weight=settings.rerank_weight) if rerank else None
    with progress_bar() as progress:
        task = progress.add_task("indexing", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=stage)

        result = evaluate_beir(beir, embedder=embedder, work_dir=settings.data_dir / "eval", on_progress=on_progress,
                               reranker=reranker, spelling=spelling and settings.spelling)
    print_result({"dataset": beir.name, "cores": os.cpu_count(),
                  "rerank": {"depth": reranker.depth, "weight": reranker.weight} if reranker else None, **result}, as_json)


@eval_app.command("qa")
def eval_qa(
    docs: Path = typer.Option(..., "--docs", exists=True, file_okay=False, help="Folder of documents."),
    questions: Path = typer.Option(..., "--questions", exists=True, dir_okay=False, help="JSONL: id, question, gold (paths relative to --docs), answerable; optional channel, kind."),
    links: Optional[Path] = typer.Option(None, "--links", exists=True, dir_okay=False, help="JSON {channel: [glob, …]}: documents linked to one channel only."),
    history_author: Optional[str] = typer.Option(None, "--history-author", help="Ask each follow-up row's history as this other person (default: the follow-up's own asker)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Ask each question through the real answer path: retrieval, the answerability trade-off
    (AUROC, abstention at false abstention ≤ 5 % / 10 %), what the deployed decision did, latency."""
    from gauges.qa import evaluate_qa

    settings = settings_for()
    with progress_bar() as progress:
        task = progress.add_task("preparing", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        result = evaluate_qa(docs, questions, settings=settings, links_path=links, on_progress=on_progress,
                             history_author=history_author)
    if not as_json:
        result = {k: v for k, v in result.items() if k != "questions"}  # the per-question rows are in --json
    print_result(result, as_json)


@eval_app.command("injection")
def eval_injection(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="JSONL files with text and label (1 = injection), scored as one set."),
    text_field: list[str] = typer.Option(["text"], "--text-field", help="Field holding the text; repeatable, the first a row has wins (e.g. --text-field text --text-field question)."),
    label: Optional[int] = typer.Option(None, "--label", min=0, max=1, help="Label of rows that have none (0 = honest questions, e.g. the QA question files)."),
    details: bool = typer.Option(False, "--details", help="List the flagged benign rows and the missed injections (for dev sets)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Detection and false-positive rates of the prompt-injection detector, over all FILES and per file."""
    from bot.guards.injection import default_detector
    from gauges.injection import evaluate_injection_file

    settings = settings_for()
    detector = default_detector(_embedder(settings))
    try:
        result = evaluate_injection_file(files, detector, text_fields=text_field, label=label, details=details)
    except ValueError as exc:  # a row without the fields asked for: say which line
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        print_result(result, as_json)
        return
    listed = {k: result.pop(k) for k in ("flagged_benign", "missed_injections") if k in result}
    result["files"] = {Path(f["file"]).name: f"{f['rows']} rows, {f['detected']} detected, {f['false_positives']} FP" for f in result["files"]}
    print_result(result, as_json)
    for name, rows in listed.items():
        typer.echo(f"{name}: {len(rows)}")
        for row in rows:
            typer.echo(f"  {row['level']:>6} {row['score']:.3f} {','.join(row['reasons']) or '-'}  {row['text'][:140]!r}")


@app.command()
def bench(
    as_json: bool = typer.Option(False, "--json"),
    sizes: str = typer.Option("10000,100000", help="Chunk counts for the query latency benchmark."),
    queries: int = typer.Option(200, help="Queries per size."),
    corpus: Optional[Path] = typer.Option(
        None, help="Folder of real documents: the ingest benchmark's text (default: generated text), and "
        "`docent ingest DIR` run as its own process into a fresh data dir (ingest_folder_s, ingest_peak_rss_mb)."
    ),
):
    """Throughput, latency and memory: ingest vs the raw model, scoped hybrid query latency; with
    --corpus, the whole `docent ingest DIR` process too."""
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
