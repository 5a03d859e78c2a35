"""`docent ask`, `docent chat` and `docent demo`: the terminal connector (connectors/console.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from connectors.cli.common import (
    DEFAULT_SCOPE,
    SCOPE_HELP,
    app,
    console,
    err,
    open_docent,
    parse_scope,
    settings_for,
)
from connectors.cli.documents import files_to_ingest, ingest_files

SAMPLES = Path(__file__).resolve().parents[2] / "knowledge" / "samples"


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
):
    """Ask one question."""
    from connectors.console import answer_json, ask_streaming, question_for

    sc = parse_scope(scope)
    with open_docent(command="docent ask") as docent:
        q = question_for(sc, question)
        if as_json:
            print(answer_json(docent.ask(q)))
        else:
            ask_streaming(docent, console, q)


@app.command()
def chat(scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP)):
    """Chat with your documents in the terminal."""
    from connectors.console import chat as run_chat

    sc = parse_scope(scope)
    with open_docent(command="docent chat") as docent:
        run_chat(docent, sc, console)


@app.command()
def demo(
    data_dir: Optional[Path] = typer.Option(None, help="Where the demo keeps its data (default: DOCENT_DATA_DIR/demo)."),
):
    """Ingest docent's own sample documents and answer a few questions — no keys, no servers."""
    from connectors.console import ask_streaming, question_for

    base = settings_for()
    settings = settings_for(data_dir=data_dir or (base.data_dir / "demo"), log_level=base.log_level)
    spec = json.loads((SAMPLES / "demo_questions.json").read_text())
    sc = parse_scope(spec.get("scope", "demo"))
    console.rule("[bold]docent demo")
    mode = "Claude" if settings.anthropic_api_key else "offline extractive answerer (no ANTHROPIC_API_KEY)"
    console.print(f"Answering with the {mode}; data in {settings.data_dir}")
    with open_docent(settings, command="docent demo") as docent:
        files, _ = files_to_ingest([SAMPLES])
        summary = ingest_files(docent, files, sc)
        console.print(
            f"Ingested {len(files)} sample documents ({summary.changed} new or changed, {summary.chunks} chunks)."
        )
        for e in summary.errors:
            err.print(f"[red]✗[/] {e}")
        for text in spec["questions"]:
            console.rule(f"[bold cyan]Q: {text}")
            ask_streaming(docent, console, question_for(sc, text))
