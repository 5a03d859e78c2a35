"""The Discord client: builds it, points it at the configured API, syncs its commands, runs it.

    docent run [discord]            → DiscordPlatform(docent, settings), run by connectors/run.py
    docent discord sync [--guild]   → await sync_once(docent, settings, guild_id)

The client counts the interactions and mentions it is handling, so a shutdown can wait for
their answers to be delivered, and reports its gateway connection to the ops endpoint.
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

from bot.metrics import PlatformConnection
from bot.types import Question
from connectors.discord.commands import register_commands
from connectors.discord.context import PLATFORM, place_of_message
from connectors.discord.feedback import FeedbackButton, feedback_view
from connectors.discord.rendering import group_into_messages, render_answer
from connectors.discord.threads import ContinueInThreadButton, is_docent_thread, thread_history

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

    The privileged message-content intent is requested only when @mentions or the follow-ups in
    docent's threads are answered.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    if settings.discord_dm_server_docs:
        # DMs see a server's documents only for its members: the (privileged) members intent
        # keeps the member list cached so that can be checked.
        intents.members = True
    if settings.discord_answer_mentions or settings.discord_thread_followups:
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = True
    return intents


class InFlight:
    """Counts handlers running in the client's event loop, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> "InFlight":
        self.count += 1
        self._idle.clear()
        return self

    def __exit__(self, *exc) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False


class TrackedCommandTree(app_commands.CommandTree):
    """The command tree, counting each interaction it runs (defer → answer → follow-ups)."""

    async def _call(self, interaction: discord.Interaction) -> None:
        with self.client.in_flight:  # type: ignore[attr-defined]
            await super()._call(interaction)


class DocentClient(discord.Client):
    """A discord.py client carrying docent's core; commands reach it as `interaction.client.docent`."""

    def __init__(self, docent: "Docent | None", settings: "Settings", *, sync_dev_guild: bool = False) -> None:
        super().__init__(intents=intents_for(settings), allowed_mentions=discord.AllowedMentions.none())
        self.docent = docent
        self.settings = settings
        self._sync_dev_guild = sync_dev_guild
        self.in_flight = InFlight()
        self.connection = PlatformConnection("discord")
        self.tree = TrackedCommandTree(self)
        register_commands(self.tree)

    async def setup_hook(self) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=ANSWER_WORKERS, thread_name_prefix="docent-answer")
        )
        # Buttons of answers sent before a restart keep working.
        self.add_dynamic_items(FeedbackButton, ContinueInThreadButton)
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

    # Gateway sessions: READY dispatches `connect`, a RESUME `resumed`; both are a live link.
    async def on_connect(self) -> None:
        self.connection.connected()

    async def on_resumed(self) -> None:
        self.connection.connected()

    async def on_disconnect(self) -> None:
        self.connection.disconnected()

    async def on_message(self, message: discord.Message) -> None:
        """Answer "@docent question" and follow-ups in docent's threads, each when enabled (both
        need the message-content intent)."""
        if self.user is None or self.docent is None or message.author.bot:
            return
        mentioned = self.settings.discord_answer_mentions and self.user in message.mentions
        follow_up = self.settings.discord_thread_followups and is_docent_thread(message.channel, self.user.id)
        if not (mentioned or follow_up):
            return
        with self.in_flight:
            await self._answer_message(message)

    async def _answer_message(self, message: discord.Message) -> None:
        assert self.user is not None and self.docent is not None
        text = message.content
        for form in (f"<@{self.user.id}>", f"<@!{self.user.id}>"):
            text = text.replace(form, " ")
        text = " ".join(text.split())
        if not text:
            return
        place = place_of_message(message, self.settings)
        thread, history = None, ()
        if isinstance(message.channel, discord.Thread):  # the thread so far goes with the question
            thread = str(message.channel.id)
            history = await thread_history(message.channel, self, asker_id=message.author.id, exclude_id=message.id)
        question = Question(
            platform=PLATFORM,
            workspace=place.workspace,
            channel=place.channel,
            user=str(message.author.id),
            text=text,
            thread=thread,
            history=history,
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


def require_token(settings: "Settings") -> None:
    _token(settings)


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


class DiscordPlatform:
    """The Discord bot as one of `docent run`'s platforms (see connectors/run.py)."""

    name = "discord"

    def __init__(self, docent: "Docent", settings: "Settings") -> None:
        self.docent = docent
        self.settings = settings
        self.token = _token(settings)
        self.client: DocentClient | None = None
        self._gateway: asyncio.Task | None = None

    async def start(self, on_fatal) -> None:
        self.client = build_client(self.docent, self.settings, sync_dev_guild=True)
        await self.client.login(self.token)  # REST: a bad token fails here, before anything is served
        self._gateway = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")

        def ended(task: asyncio.Task) -> None:
            # connect() only returns or raises for good (bad intents, closed): the process must stop.
            if not task.cancelled() and (task.exception() is not None or not self.client.is_closed()):
                on_fatal(task.exception() or RuntimeError("the Discord gateway connection ended"))

        self._gateway.add_done_callback(ended)

    def is_connected(self) -> bool:
        return self.client is not None and self.client.connection.up and not self.client.is_closed()

    async def stop_intake(self) -> None:
        # The gateway stays up while answers drain: their follow-ups go over REST, and an
        # interaction that arrives meanwhile is still answered (Discord never redelivers one).
        pass

    async def drain(self, timeout_s: float) -> bool:
        if self.client is None:
            return True
        return await self.client.in_flight.wait_idle(timeout_s)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client.connection.disconnected()
        if self._gateway is not None:
            try:
                await asyncio.wait_for(self._gateway, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                log.debug("discord gateway task ended with an error at close", exc_info=True)


def run(docent: "Docent", settings: "Settings") -> None:
    """`docent run discord`: connect to the gateway and serve until SIGTERM / Ctrl-C."""
    from connectors.run import run_platforms

    run_platforms(docent, settings, [DiscordPlatform(docent, settings)])
