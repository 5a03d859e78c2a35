"""`docent gaps`: the questions docent couldn't answer well, grouped by meaning.

Needs only the SQL database and the embedder (never the chunk store), so it runs beside a
`docent run` that holds the data dir.
"""

from __future__ import annotations

import json

import typer

from connectors.cli.common import (
    DEFAULT_SCOPE,
    SCOPE_HELP,
    app,
    cli_actor,
    console,
    err,
    open_records,
    parse_scope,
    settings_for,
)


@app.command()
def gaps(
    days: int = typer.Option(30, "--days", min=1, max=365, help="How many days back (today included)."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP + " A workspace means all its channels."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Coverage gaps: questions docent abstained on or that got 👎, grouped by meaning and counted
    with their channels — which document to add next."""
    from knowledge.embeddings import make_embedder

    target = parse_scope(scope)
    settings = settings_for()
    if settings.store_question == "hash":
        err.print("DOCENT_STORE_QUESTION=hash: questions are stored hashed, and coverage gaps need redacted "
                  "questions (DOCENT_STORE_QUESTION=redacted). Only questions stored before the switch can be grouped.",
                  soft_wrap=True, markup=False, highlight=False)
    embedder = make_embedder(settings.embedder, settings.embedding_model_path, settings.embedding_batch_size)
    with open_records(settings) as admin:
        report = admin.gaps(cli_actor(target.workspace), target.workspace, embedder=embedder, days=days,
                            channel=None if target.is_workspace_wide else target.channel)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        console.print(report.render_text(), markup=False, highlight=False, soft_wrap=True)
