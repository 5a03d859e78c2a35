"""The Discord client: builds it, points it at the configured API, syncs its commands, runs it.

    docent run discord              → run(docent, settings)
    docent discord sync [--guild]   → await sync_once(docent, settings, guild_id)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.types import Question
from connectors.discord.commands import register_commands
from connectors.discord.context import PLATFORM, place_of_message
from connectors.discord.feedback import FeedbackButton, feedback_view
from connectors.discord.rendering import group_into_messages, render_answer

if TYPE_CHECKING:
    from bot.core import Docent
    from bot.settings import Settings

log = logging.getLogger(__name__)

# Answers run in worker threads (Docent.aask). asyncio's default pool has cores + 4 threads, so on
# a 2-core host a 7th simultaneous question would queue behind mostly idle (network-bound) calls.
ANSWER_WORKERS = 32


class MissingToken(RuntimeError):
    def __init__(self) -> None:
        super().__init__("Set DISCORD_TOKEN (the bot token from the Discord developer portal) to run the Discord bot.")


def use_api(api_url: str | None) -> None:
    """Send REST, interaction callbacks and webhooks to `api_url` (e.g. a test server).

    discord.py keeps the base URL on `Route.BASE`, a class attribute: one API per process.
    """
    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")


def intents_for(settings: "Settings") -> discord.Intents:
    """Minimal intents: slash commands need none; `guilds` keeps channels (thread parents) cached.

    The privileged message-content intent is requested only when @mentions are answered.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    if settings.discord_dm_server_docs:
        # DMs see a server's documents only for its members: the (privileged) members intent
        # keeps the member list cached so that can be checked.
        intents.members = True
    if settings.discord_answer_mentions:
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = True
    return intents


class DocentClient(discord.Client):
    """A discord.py client carrying docent's core; commands reach it as `interaction.client.docent`."""

    def __init__(self, docent: "Docent | None", settings: "Settings", *, sync_dev_guild: bool = False) -> None:
        super().__init__(intents=intents_for(settings), allowed_mentions=discord.AllowedMentions.none())
        self.docent = docent
        self.settings = settings
        self._sync_dev_guild = sync_dev_guild
        self.tree = app_commands.CommandTree(self)
        register_commands(self.tree)

    async def setup_hook(self) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=ANSWER_WORKERS, thread_name_prefix="docent-answer")
        )
        # Feedback buttons of answers sent before a restart keep working.
        self.add_dynamic_items(FeedbackButton)
        gateway = self.settings.discord_gateway_url
        if not gateway and self.settings.discord_api_url:
            # Route.BASE does not move the gateway: ask the configured API where its gateway is.
            _shards, gateway, _limits = await self.http.get_bot_gateway()
        if gateway:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        if self._sync_dev_guild and self.settings.discord_dev_guild_id:
            # A development guild gets the current commands at every start (instant, unlike global).
            try:
                await sync_commands(self, self.settings.discord_dev_guild_id)
            except discord.HTTPException:
                log.exception("could not sync commands to the development guild")

    async def on_ready(self) -> None:
        log.info("discord connected as %s in %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        """Answer "@docent question" when enabled (needs the message-content intent)."""
        if not self.settings.discord_answer_mentions or self.user is None or self.docent is None:
            return
        if message.author.bot or self.user not in message.mentions:
            return
        text = message.content
        for form in (f"<@{self.user.id}>", f"<@!{self.user.id}>"):
            text = text.replace(form, " ")
        text = " ".join(text.split())
        if not text:
            return
        place = place_of_message(message, self.settings)
        question = Question(
            platform=PLATFORM,
            workspace=place.workspace,
            channel=place.channel,
            user=str(message.author.id),
            text=text,
            thread=str(message.channel.id) if isinstance(message.channel, discord.Thread) else None,
            request_id=f"discord:{message.id}",
        )
        try:
            await message.channel.typing()  # "docent is typing…" for ~10 s; cosmetic
        except discord.HTTPException:
            log.debug("typing indicator failed", exc_info=True)
        answer = await self.docent.aask(question)
        messages = group_into_messages(render_answer(answer, question=text))
        view = feedback_view(answer.request_id)
        for i, batch in enumerate(messages):
            kwargs = {"view": view} if (view is not None and i == len(messages) - 1) else {}
            if i == 0:
                await message.reply(embeds=batch, mention_author=False, **kwargs)
            else:
                await message.channel.send(embeds=batch, **kwargs)


def build_client(docent: "Docent | None", settings: "Settings", *, sync_dev_guild: bool = False) -> DocentClient:
    """The client with docent's command tree; `docent` may be None only for syncing commands.

    `sync_dev_guild`: at start-up, sync the commands to DOCENT_DISCORD_DEV_GUILD_ID (if set).
    """
    use_api(settings.discord_api_url)
    return DocentClient(docent, settings, sync_dev_guild=sync_dev_guild)


async def sync_commands(client: discord.Client, guild_id: int | None) -> list[app_commands.AppCommand]:
    """Register the commands with Discord: globally (up to an hour to appear) or in one guild (instant).

    The client must be logged in (`await client.login(token)`).
    """
    tree: app_commands.CommandTree = client.tree  # type: ignore[attr-defined]
    if guild_id:
        guild = discord.Object(id=guild_id)
        tree.copy_global_to(guild=guild)
        return await tree.sync(guild=guild)
    return await tree.sync()


def _token(settings: "Settings") -> str:
    if settings.discord_token is None or not settings.discord_token.get_secret_value():
        raise MissingToken()
    return settings.discord_token.get_secret_value()


async def sync_once(docent: "Docent | None", settings: "Settings", guild_id: int | None = None) -> list[str]:
    """`docent discord sync [--guild ID]`: log in over REST, sync the commands, log out.

    Returns the synced command names. Needs no gateway connection; `docent` may be None.
    """
    token = _token(settings)
    client = build_client(docent, settings)
    try:
        await client.login(token)
        synced = await sync_commands(client, guild_id)
        names = [c.name for c in synced]
        log.info("synced %d commands %s: %s", len(names), f"to guild {guild_id}" if guild_id else "globally", names)
        return names
    finally:
        await client.close()


def run(docent: "Docent", settings: "Settings") -> None:
    """`docent run discord`: connect to the gateway and serve until interrupted."""
    token = _token(settings)
    client = build_client(docent, settings, sync_dev_guild=True)
    # log_handler=None: docent configures logging itself (and never logs the token).
    client.run(token, log_handler=None)
