"""`docent caps set|clear|list`: per-user daily spending caps, through the shared admin operations."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from connectors.cli.common import DEFAULT_SCOPE, app, cli_actor, console, err, open_records, settings_for

caps_app = typer.Typer(
    help="Per-user daily spending caps (overrides of DOCENT_USER_DAILY_CAP_USD).", no_args_is_help=True
)
app.add_typer(caps_app, name="caps")

WORKSPACE = typer.Option(DEFAULT_SCOPE, "--workspace", "-w", help="Slack team id, Discord server id, or 'local'.")


@caps_app.command("set")
def caps_set(
    user: str = typer.Argument(..., help="The user's id on its platform (Slack U…, Discord snowflake)."),
    amount: str = typer.Argument(..., help="US dollars per day, e.g. 2.50 (0 stops the user's questions)."),
    workspace: str = WORKSPACE,
):
    """Give one user their own daily cap."""
    from admin.operations import parse_cap_usd
    from admin.types import InvalidCap

    try:
        usd = parse_cap_usd(amount)
    except InvalidCap as e:
        raise typer.BadParameter(str(e), param_hint="AMOUNT") from None
    with open_records() as admin:  # the database only: caps are read from it at every question
        admin.set_user_cap(cli_actor(workspace), workspace, user, usd)
    console.print(f"{user} in {workspace} may now spend up to ${usd:,.2f} a day.")


@caps_app.command("clear")
def caps_clear(user: str = typer.Argument(..., help="The user's id."), workspace: str = WORKSPACE):
    """Put one user back on the default daily cap."""
    with open_records() as admin:
        had = any(c.user == user for c in admin.user_caps(cli_actor(workspace), workspace))
        admin.set_user_cap(cli_actor(workspace), workspace, user, None)
    default = settings_for().user_daily_cap_usd
    if not had:
        err.print(f"{user} had no cap of their own in {workspace}.")
    console.print(f"{user} in {workspace} is on the default cap of ${default:,.2f} a day.")


@caps_app.command("list")
def caps_list(workspace: str = WORKSPACE, as_json: bool = typer.Option(False, "--json")):
    """Users with their own daily cap."""
    with open_records() as admin:
        caps = admin.user_caps(cli_actor(workspace), workspace)
    default = settings_for().user_daily_cap_usd
    if as_json:
        print(json.dumps({"default_usd": default, "caps": [
            {"user": c.user, "daily_cap_usd": c.daily_cap_usd, "set_by": c.set_by, "set_at": c.set_at.isoformat()}
            for c in caps]}, indent=2))
        return
    table = Table("user", "daily cap", "set by", "set at", title=f"caps in {workspace} (default ${default:,.2f})")
    for c in caps:
        table.add_row(c.user, f"${c.daily_cap_usd:,.2f}", c.set_by, f"{c.set_at:%Y-%m-%d %H:%M}")
    console.print(table)
