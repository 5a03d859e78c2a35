"""`docent usage`, `docent migrate`, `docent run slack|discord` and `docent discord sync`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from connectors.cli.common import (
    DEFAULT_SCOPE,
    app,
    cli_actor,
    console,
    discord_app,
    err,
    open_docent,
    run_app,
    settings_for,
)


@app.command()
def usage(
    workspace: str = typer.Option(DEFAULT_SCOPE, "--workspace", "-w"),
    user: Optional[str] = typer.Option(None, "--user"),
    channel: Optional[str] = typer.Option(None, "--channel"),
    days: int = typer.Option(30, "--days", min=1),
    as_json: bool = typer.Option(False, "--json"),
    chart: Optional[Path] = typer.Option(None, "--chart", dir_okay=False, help="Write a PNG of requests and cost per day here."),
):
    """Usage and cost report from the ledger."""
    with open_docent() as docent:
        actor = cli_actor(workspace)
        report = docent.admin.usage(actor, workspace, user=user, channel=channel, days=days)
        if chart:
            chart.parent.mkdir(parents=True, exist_ok=True)
            chart.write_bytes(docent.admin.usage_chart(actor, workspace, days=days, user=user, channel=channel))
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

    settings = settings_for()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Database(settings.sqlalchemy_url).migrate()
    console.print("database is up to date")


@run_app.command("slack")
def run_slack(
    http: bool = typer.Option(False, "--http", help="Serve the Events API over HTTP instead of Socket Mode."),
    port: int = typer.Option(3000, "--port"),
):
    """Run the Slack bot (Socket Mode by default)."""
    from connectors.slack.app import run_http, run_socket_mode

    settings = settings_for(service=True)
    with open_docent(settings) as docent:
        if http:
            run_http(docent, settings, port)
        else:
            run_socket_mode(docent, settings)


@run_app.command("discord")
def run_discord():
    """Run the Discord bot."""
    from connectors.discord.bot import run

    settings = settings_for(service=True)
    with open_docent(settings) as docent:
        run(docent, settings)


@discord_app.command("sync")
def discord_sync(guild: Optional[int] = typer.Option(None, "--guild", help="Sync to one development guild only.")):
    """Register the slash commands globally, or with one guild (instant)."""
    import asyncio

    from connectors.discord.bot import sync_once

    settings = settings_for()
    with open_docent(settings) as docent:
        asyncio.run(sync_once(docent, settings, guild))
