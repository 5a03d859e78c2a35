"""docent on Discord: slash commands (/ask, /docs, /usage) on discord.py's app_commands."""

from connectors.discord.bot import DocentClient, build_client, run, sync_commands, sync_once

__all__ = ["DocentClient", "build_client", "run", "sync_commands", "sync_once"]
