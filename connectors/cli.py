"""`docent` — the command line: ingest, ask, chat, documents, usage, gauges, and the bots.

Heavy imports (torch, Qdrant, Slack, Discord) happen inside commands so `docent --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="docent answers your team's questions from its own documents, with citations.", no_args_is_help=True)
docs_app = typer.Typer(help="Documents: list and remove.", no_args_is_help=True)
eval_app = typer.Typer(help="Quality gauges: retrieval (BEIR), QA, injection.", no_args_is_help=True)
run_app = typer.Typer(help="Run a chat bot.", no_args_is_help=True)
discord_app = typer.Typer(help="Discord operations.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")
app.add_typer(run_app, name="run")
app.add_typer(discord_app, name="discord")

console = Console()
err = Console(stderr=True)

SCOPE_HELP = "WORKSPACE for workspace-wide documents, or WORKSPACE/CHANNEL for one channel."
DEFAULT_SCOPE = "local"
SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"


def _settings(*, service: bool = False, **overrides):
    """Settings for a command. Interactive commands log warnings only unless DOCENT_LOG_LEVEL
    says otherwise; the bots (`service=True`) log one event per request."""
    from bot.logs import configure_logging
    from bot.settings import Settings

    if not service and "DOCENT_LOG_LEVEL" not in os.environ:
        overrides.setdefault("log_level", "WARNING")
    settings = Settings(**overrides)
    configure_logging(settings)
    return settings


def _docent(settings=None):
    from bot.core import Docent

    return Docent.from_settings(settings or _settings())


def _scope(text: str):
    from knowledge.types import Scope

    try:
        return Scope.parse(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


def _cli_actor(workspace: str):
    import getpass

    from admin.types import Actor

    # Whoever runs the CLI on the server owns the data directory: an operator, hence an admin.
    return Actor(platform="cli", workspace=workspace, user_id=getpass.getuser(), is_platform_admin=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    )


def _files(paths: list[Path]) -> list[Path]:
    from knowledge.loaders import SUPPORTED_EXTENSIONS

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_EXTENSIONS)
        elif p.exists():
            out.append(p)
        else:
            raise typer.BadParameter(f"{p} does not exist")
    return out


def ingest_files(docent, files: list[Path], scope, *, show_progress: bool = True) -> tuple[int, int, list[str]]:
    """Ingest files through the shared admin operation; returns (documents changed, chunks, errors)."""
    from knowledge.types import DocumentError

    actor = _cli_actor(scope.workspace)
    changed = chunks = 0
    errors: list[str] = []
    with _progress() if show_progress else _NullProgress() as progress:
        task = progress.add_task("ingesting", total=len(files))
        for f in files:
            progress.update(task, description=f"ingesting {f.name[:40]}")
            try:
                report = docent.admin.upload(actor, f.name, f.read_bytes(), scope)
                changed += int(report.changed)
                chunks += report.record.chunks if report.changed else 0
                if report.findings:
                    errors.append(f"{f.name}: flagged — possible embedded instructions: {report.findings[0][:120]!r}")
            except DocumentError as e:
                errors.append(str(e))
            except OSError as e:  # unreadable file: report it, keep going with the rest
                errors.append(f"{f.name}: can't be read ({e.strerror or e})")
            progress.advance(task)
    return changed, chunks, errors


class _NullProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass


# ---------------------------------------------------------------------------------------------
@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (PDF, DOCX, TXT, Markdown, HTML)."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
):
    """Add documents (re-ingesting a changed file replaces it; an unchanged one is skipped)."""
    sc = _scope(scope)
    files = _files(paths)
    docent = _docent()
    try:
        changed, chunks, errors = ingest_files(docent, files, sc)
    finally:
        docent.close()
    console.print(f"[green]{changed}[/] of {len(files)} documents ingested or updated ({chunks} chunks) into [cyan]{sc}[/].")
    for e in errors:
        err.print(f"[red]✗[/] {e}")
    raise typer.Exit(1 if errors and not changed and len(errors) == len(files) else 0)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
):
    """Ask one question."""
    from connectors.console import answer_json, ask_streaming, question_for

    docent = _docent()
    try:
        q = question_for(_scope(scope), question)
        if as_json:
            print(answer_json(docent.ask(q)))
        else:
            ask_streaming(docent, console, q)
    finally:
        docent.close()


@app.command()
def chat(scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP)):
    """Chat with your documents in the terminal."""
    from connectors.console import chat as run_chat

    docent = _docent()
    try:
        run_chat(docent, _scope(scope), console)
    finally:
        docent.close()


@app.command()
def demo(
    data_dir: Optional[Path] = typer.Option(None, help="Where the demo keeps its data (default: DOCENT_DATA_DIR/demo)."),
):
    """Ingest docent's own sample documents and answer a few questions — no keys, no servers."""
    from connectors.console import ask_streaming, question_for

    base = _settings()
    settings = _settings(data_dir=data_dir or (base.data_dir / "demo"), log_level=base.log_level)
    spec = json.loads((SAMPLES / "demo_questions.json").read_text())
    sc = _scope(spec.get("scope", "demo"))
    console.rule("[bold]docent demo")
    mode = "Claude" if settings.anthropic_api_key else "offline extractive answerer (no ANTHROPIC_API_KEY)"
    console.print(f"Answering with the {mode}; data in {settings.data_dir}")
    docent = _docent(settings)
    try:
        files = _files([SAMPLES])
        changed, chunks, errors = ingest_files(docent, files, sc)
        console.print(f"Ingested {len(files)} sample documents ({changed} new or changed, {chunks} chunks).")
        for e in errors:
            err.print(f"[red]✗[/] {e}")
        for text in spec["questions"]:
            console.rule(f"[bold cyan]Q: {text}")
            ask_streaming(docent, console, question_for(sc, text))
    finally:
        docent.close()


# ---------------------------------------------------------------------------------------------
@docs_app.command("list")
def docs_list(
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
    as_json: bool = typer.Option(False, "--json"),
):
    """List the documents visible in a scope."""
    docent = _docent()
    try:
        records = docent.admin.list_documents(_scope(scope))
    finally:
        docent.close()
    if as_json:
        from dataclasses import asdict

        print(json.dumps([asdict(r) for r in records], default=str, indent=2))
        return
    table = Table("name", "scope", "pages", "chunks", "size", "uploaded", "flags")
    for r in records:
        table.add_row(
            r.name, f"{r.workspace}/{r.channel}", str(r.pages or "—"), str(r.chunks),
            f"{r.size_bytes / 1024:.0f} KB", str(r.uploaded_at)[:16],
            ("quarantined" if r.quarantined else "flagged" if r.flagged else ""),
        )
    console.print(table)


@docs_app.command("remove")
def docs_remove(
    name: str = typer.Argument(..., help="Document name (file name) to remove."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
):
    """Remove a document from a scope."""
    from admin.types import NotFound

    sc = _scope(scope)
    docent = _docent()
    try:
        record = docent.admin.remove(_cli_actor(sc.workspace), sc, name)
        console.print(f"Removed [bold]{record.name}[/] ({record.chunks} chunks) from {sc}.")
    except NotFound as e:
        err.print(str(e))
        raise typer.Exit(1)
    finally:
        docent.close()


# ---------------------------------------------------------------------------------------------
@app.command()
def usage(
    workspace: str = typer.Option(DEFAULT_SCOPE, "--workspace", "-w"),
    user: Optional[str] = typer.Option(None, "--user"),
    channel: Optional[str] = typer.Option(None, "--channel"),
    days: int = typer.Option(30, "--days", min=1),
    as_json: bool = typer.Option(False, "--json"),
    chart: Optional[Path] = typer.Option(None, "--chart", dir_okay=False, help="Write a PNG of cost per day here."),
):
    """Usage and cost report from the ledger."""
    docent = _docent()
    try:
        actor = _cli_actor(workspace)
        report = docent.admin.usage(actor, workspace, user=user, channel=channel, days=days)
        if chart:
            chart.parent.mkdir(parents=True, exist_ok=True)
            chart.write_bytes(docent.admin.usage_chart(actor, workspace, days=days, user=user, channel=channel))
    finally:
        docent.close()
    if as_json:
        print(json.dumps(report.to_dict(), default=str, indent=2))
    else:
        console.print(report.render_text())
    if chart:
        err.print(f"chart written to {chart}")


@app.command()
def migrate():
    """Create or upgrade the database schema (Alembic)."""
    from admin.db import Database

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Database(settings.sqlalchemy_url).migrate()
    console.print("database is up to date")


# ---------------------------------------------------------------------------------------------
@eval_app.command("retrieval")
def eval_retrieval(
    beir: Path = typer.Option(..., "--beir", exists=True, file_okay=False, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    as_json: bool = typer.Option(False, "--json"),
):
    """nDCG@10, recall@10 and MRR@10 of the hybrid retriever on a BEIR data set."""
    from knowledge.embeddings import make_embedder
    from knowledge.evaluation import evaluate_beir

    settings = _settings()
    embedder = make_embedder(settings.embedder, settings.embedding_model_path, settings.embedding_batch_size)
    with _progress() as progress:
        task = progress.add_task("indexing", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=stage)

        result = evaluate_beir(beir, embedder=embedder, work_dir=settings.data_dir / "eval", on_progress=on_progress)
    result = {"dataset": beir.name, "cores": os.cpu_count(), **result}
    _print_result(result, as_json)


@eval_app.command("qa")
def eval_qa(
    docs: Path = typer.Option(..., "--docs", exists=True, file_okay=False, help="Folder of documents."),
    questions: Path = typer.Option(..., "--questions", exists=True, dir_okay=False, help="JSONL: id, question, gold (paths relative to --docs), answerable."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Ask each question through the real answer path; recall of gold documents, abstention, latency."""
    from bot.qa_eval import evaluate_qa

    settings = _settings()
    with _progress() as progress:
        task = progress.add_task("preparing", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        result = evaluate_qa(docs, questions, settings=settings, on_progress=on_progress)
    _print_result(result, as_json)


@eval_app.command("injection")
def eval_injection(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL with text and label (1 = injection)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Detection and false-positive rates of the prompt-injection detector."""
    from bot.guards.injection import default_detector
    from gauges.injection import evaluate_injection_file
    from knowledge.embeddings import make_embedder

    settings = _settings()
    embedder = make_embedder(settings.embedder, settings.embedding_model_path, settings.embedding_batch_size)
    _print_result(evaluate_injection_file(file, default_detector(embedder)), as_json)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = Table("metric", "value")
    for k, v in result.items():
        if isinstance(v, dict):
            v = ", ".join(f"{kk}: {vv:.2f}" if isinstance(vv, float) else f"{kk}: {vv}" for kk, vv in v.items())
        elif isinstance(v, float):
            v = f"{v:.4f}"
        table.add_row(k, str(v))
    console.print(table)


# ---------------------------------------------------------------------------------------------
@app.command()
def bench(
    target: str = typer.Argument("core", help="core | slack | discord"),
    as_json: bool = typer.Option(False, "--json"),
    sizes: str = typer.Option("10000,100000", help="Chunk counts for the query latency benchmark."),
    queries: int = typer.Option(200, help="Queries per size."),
    corpus: Optional[Path] = typer.Option(
        None, help="Folder of real documents for the ingest benchmark (default: generated text)."
    ),
):
    """Throughput, latency and memory benchmarks."""
    settings = _settings()
    if target == "core":
        from knowledge.bench import run_bench
        from knowledge.embeddings import make_embedder

        embedder = make_embedder(settings.embedder, settings.embedding_model_path, settings.embedding_batch_size)
        with _progress() as progress:
            task = progress.add_task("bench", total=None)

            def on_progress(stage: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, description=stage)

            result = run_bench(
                embedder=embedder, work_dir=settings.data_dir / "bench", corpus_dir=corpus,
                sizes=tuple(int(s) for s in sizes.split(",") if s), queries=queries, on_progress=on_progress,
            )
    elif target == "slack":
        from connectors.slack.loadtest import run_slack_bench

        result = run_slack_bench(settings)
    elif target == "discord":
        from connectors.discord.loadtest import run_discord_bench

        result = run_discord_bench(settings)
    else:
        raise typer.BadParameter("target must be core, slack or discord")
    _print_result(result, as_json)


# ---------------------------------------------------------------------------------------------
@run_app.command("slack")
def run_slack(
    http: bool = typer.Option(False, "--http", help="Serve the Events API over HTTP instead of Socket Mode."),
    port: int = typer.Option(3000, "--port"),
):
    """Run the Slack bot (Socket Mode by default)."""
    from connectors.slack.app import run_http, run_socket_mode

    settings = _settings(service=True)
    docent = _docent(settings)
    try:
        if http:
            run_http(docent, settings, port)
        else:
            run_socket_mode(docent, settings)
    finally:
        docent.close()


@run_app.command("discord")
def run_discord():
    """Run the Discord bot."""
    from connectors.discord.bot import run

    settings = _settings(service=True)
    docent = _docent(settings)
    try:
        run(docent, settings)
    finally:
        docent.close()


@discord_app.command("sync")
def discord_sync(guild: Optional[int] = typer.Option(None, "--guild", help="Sync to one development guild only.")):
    """Register the slash commands globally, or with one guild (instant)."""
    import asyncio

    from connectors.discord.bot import sync_once

    settings = _settings()
    docent = _docent(settings)
    try:
        asyncio.run(sync_once(docent, settings, guild))
    finally:
        docent.close()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
