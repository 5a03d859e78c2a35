"""What every `docent` command shares: the Typer apps, settings, opening docent, scopes, output."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
run_app = typer.Typer(help="Run the chat bots: every configured platform, or one.")
discord_app = typer.Typer(help="Discord operations.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")
app.add_typer(run_app, name="run")
app.add_typer(discord_app, name="discord")

console = Console()
err = Console(stderr=True)

SCOPE_HELP = "WORKSPACE for workspace-wide documents, or WORKSPACE/CHANNEL for one channel."
DEFAULT_SCOPE = "local"


def settings_for(*, service: bool = False, **overrides):
    """Settings for a command. Interactive commands log warnings only unless DOCENT_LOG_LEVEL
    says otherwise; the bots (`service=True`) log one event per request."""
    from bot.logs import configure_logging
    from bot.settings import Settings

    if not service and "DOCENT_LOG_LEVEL" not in os.environ:
        overrides.setdefault("log_level", "WARNING")
    settings = Settings(**overrides)
    configure_logging(settings)
    return settings


def fail(message: str) -> typer.Exit:
    """Print one line on stderr (never wrapped, never markup) and give the exit to raise."""
    err.print(f"docent: {message}", soft_wrap=True, markup=False, highlight=False)
    return typer.Exit(1)


@contextmanager
def _local_docent(settings) -> Iterator:
    from bot.core import Docent

    with Docent.from_settings(settings) as docent:
        yield docent


@contextmanager
def open_docent(settings=None, *, command: str = "docent") -> Iterator:
    """`with open_docent(command="docent ingest") as docent:` — the core for a command that needs
    the chunk store, closed however it ends.

    The embedded store has one writer process: when a `docent run` holds the data dir, this is
    that process's docent, reached over its control socket (connectors/control); otherwise the
    store is opened here, holding the data dir for the command. A holder that can't be reached
    is one line on stderr and exit code 1.
    """
    settings = settings or settings_for()
    if settings.qdrant_url:  # a Qdrant server takes any number of clients: nothing to forward
        with _local_docent(settings) as docent:
            yield docent
        return
    from connectors.control.client import HolderUnavailable, open_or_forward
    from connectors.control.holder import DataDirLock

    def waiting(info) -> None:
        err.print(f"waiting for process {info.pid} ({info.command}) to finish starting…", soft_wrap=True,
                  markup=False, highlight=False)

    try:
        with open_or_forward(DataDirLock(settings.data_dir), command, lambda: _local_docent(settings),
                             on_wait=waiting) as docent:
            yield docent
    except HolderUnavailable as e:
        raise fail(str(e)) from None


@contextmanager
def open_records(settings=None) -> Iterator:
    """The admin operations over the SQL database only (documents registry, ledger): for commands
    that must not open the chunk store. SQLite in WAL mode is safe beside a running bot."""
    from admin.db import Database
    from admin.operations import AdminOperations

    settings = settings or settings_for()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url)
    try:
        db.migrate()
        yield AdminOperations(None, db, admin_user_ids=settings.admin_user_ids)
    finally:
        db.close()


def parse_scope(text: str):
    from knowledge.types import Scope

    try:
        return Scope.parse(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


def cli_actor(workspace: str):
    import getpass

    from admin.types import Actor

    # Whoever runs the CLI on the server owns the data directory: an operator, hence an admin.
    return Actor(platform="cli", workspace=workspace, user_id=getpass.getuser(), is_platform_admin=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    )


def print_result(result: dict, as_json: bool) -> None:
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


def existing_path(p: Path) -> Path:
    if not p.exists():
        raise typer.BadParameter(f"{p} does not exist")
    return p
