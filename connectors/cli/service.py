"""`docent usage`, `docent migrate`, `docent run [slack|discord]` and `docent discord sync`.

`usage` and `migrate` need only the SQL database and `discord sync` neither it nor the store, so
they work beside a running bot without touching its store.
"""

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
    fail,
    open_records,
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
    with open_records() as admin:
        actor = cli_actor(workspace)
        report = admin.usage(actor, workspace, user=user, channel=channel, days=days)
        if chart:
            chart.parent.mkdir(parents=True, exist_ok=True)
            chart.write_bytes(admin.usage_chart(actor, workspace, days=days, user=user, channel=channel))
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


@run_app.callback(invoke_without_command=True)
def run_all(
    ctx: typer.Context,
    http: bool = typer.Option(False, "--http", help="Slack over HTTP (Events API) instead of Socket Mode."),
    port: int = typer.Option(3000, "--port", help="Port of Slack's HTTP endpoint (with --http)."),
):
    """Run every platform whose credentials are set — Slack and/or Discord — in one process.

    `docent run slack` or `docent run discord` runs one."""
    if ctx.invoked_subcommand is not None:
        return
    from connectors.run import configured_names, configured_platforms

    _serve(
        lambda settings: configured_names(settings, http=http),
        lambda docent, settings: configured_platforms(docent, settings, http=http, port=port),
    )


@run_app.command("slack")
def run_slack(
    http: bool = typer.Option(False, "--http", help="Serve the Events API over HTTP instead of Socket Mode."),
    port: int = typer.Option(3000, "--port"),
):
    """Run the Slack bot (Socket Mode by default)."""
    from connectors.slack.app import SlackHttpPlatform, SlackSocketModePlatform, require_credentials

    def slack(docent, settings):
        return [SlackHttpPlatform(docent, settings, port) if http else SlackSocketModePlatform(docent, settings)]

    _serve(lambda settings: require_credentials(settings, http=http), slack)


@run_app.command("discord")
def run_discord():
    """Run the Discord bot."""
    from connectors.discord.bot import DiscordPlatform, require_token

    _serve(require_token, lambda docent, settings: [DiscordPlatform(docent, settings)])


def _serve(check, platforms_for) -> None:
    """Check the platforms' credentials, hold the data dir (embedded store), build the one Docent
    and serve the platforms with the ops endpoint — and, in embedded mode, the control socket the
    CLI forwards store operations to."""
    import asyncio

    from connectors.control.holder import DataDirLock
    from connectors.discord.bot import MissingToken
    from connectors.ops import OpsPortInUse
    from connectors.run import NoPlatformConfigured, PlatformStartFailed, serve
    from connectors.slack.app import SlackSetupError

    settings = settings_for(service=True)
    try:
        check(settings)
    except (NoPlatformConfigured, SlackSetupError, MissingToken) as e:
        raise fail(str(e)) from None
    from bot.core import Docent  # the models and the store: only once there is something to serve
    lock = None
    if not settings.qdrant_url:
        lock = DataDirLock(settings.data_dir)
        if not lock.acquire("docent run"):
            holder = lock.holder()
            who = f"process {holder.pid} ({holder.command})" if holder else "another process"
            raise fail(f"{settings.data_dir} is already held by {who}; stop it first, or run several bots on a "
                       "Qdrant server (QDRANT_URL) with Redis and Postgres — see README.")
    try:
        with Docent.from_settings(settings) as docent:
            platforms = platforms_for(docent, settings)
            control = None
            if lock is not None:
                from connectors.control.server import ControlServer

                control = ControlServer(docent, lock)
            try:
                asyncio.run(serve(docent, settings, platforms, control=control))
            except (OpsPortInUse, PlatformStartFailed) as e:
                raise fail(str(e)) from None
    finally:
        if lock is not None:
            lock.release()


@discord_app.command("sync")
def discord_sync(guild: Optional[int] = typer.Option(None, "--guild", help="Sync to one development guild only.")):
    """Register the slash commands globally, or with one guild (instant)."""
    import asyncio

    import aiohttp
    import discord

    from connectors.discord.bot import MissingToken, sync_once

    settings = settings_for()
    try:
        names = asyncio.run(sync_once(None, settings, guild))  # needs neither the store nor the database
    except MissingToken as e:
        raise fail(str(e)) from None
    except discord.LoginFailure:
        raise fail("Discord refused DISCORD_TOKEN: copy the bot token again from the developer portal.") from None
    except discord.Forbidden:
        raise fail(f"the bot may not register commands{f' in guild {guild}' if guild else ''}: invite it with the "
                   "applications.commands scope (see README: Discord).") from None
    except (discord.HTTPException, aiohttp.ClientError, OSError) as e:
        raise fail(f"could not reach Discord to sync the commands: {e}") from None
    where = f"guild {guild}" if guild else "every server (global commands can take up to an hour to appear)"
    console.print(f"Synced {len(names)} commands to {where}: {', '.join('/' + n for n in names)}")
