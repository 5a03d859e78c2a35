"""Who is asking and where: a Discord interaction as docent's platform-free scope, actor and question.

Scope rules on Discord:
- In a server, the workspace is the guild id and the channel is the channel id; a thread (or a
  forum post) uses its parent channel, so a thread sees exactly what its channel sees.
- In a DM there is no server. By default a DM question is asked in a private per-user workspace
  (`discord-dm:<user id>`) with no channel, which holds no documents: DMs see nothing
  server-scoped. With `DOCENT_DISCORD_DM_SERVER_DOCS=true`, DMs see the server-wide documents (never
  channel documents) of `DOCENT_DISCORD_DM_GUILD_ID` (falling back to `DOCENT_DISCORD_DEV_GUILD_ID`),
  because a user may share several servers with the bot and a DM can't say which one is meant.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from admin.types import Actor
from bot.settings import Settings
from bot.types import PriorTurn, Question
from knowledge.types import Scope

PLATFORM = "discord"


@dataclass(frozen=True)
class Place:
    """Where an interaction happened, in docent's terms."""

    workspace: str
    channel: str | None  # None: a DM (workspace-wide documents only)
    is_dm: bool

    @property
    def scope(self) -> Scope:
        return Scope(self.workspace, self.channel)


def dm_workspace(user_id: int, settings: Settings, client: discord.Client | None = None) -> str:
    """The workspace a DM asks in: the configured server's, but only for a known member of that
    server (anyone sharing any server with the bot can DM it); otherwise a private, empty one."""
    guild_id = settings.discord_dm_guild_id or settings.discord_dev_guild_id
    if settings.discord_dm_server_docs and guild_id and client is not None:
        guild = client.get_guild(int(guild_id))
        if guild is not None and guild.get_member(int(user_id)) is not None:
            return str(guild_id)
    return f"discord-dm:{user_id}"


def channel_id_for_scope(channel: object, fallback_id: int | None) -> int | None:
    """A thread's (or forum post's) parent channel; otherwise the channel itself."""
    if isinstance(channel, discord.Thread) or getattr(channel, "type", None) in (
        discord.ChannelType.public_thread,
        discord.ChannelType.private_thread,
        discord.ChannelType.news_thread,
    ):
        parent_id = getattr(channel, "parent_id", None)
        if parent_id:
            return int(parent_id)
    channel_id = getattr(channel, "id", None)
    return int(channel_id) if channel_id is not None else fallback_id


def place_of(interaction: discord.Interaction, settings: Settings) -> Place:
    if interaction.guild_id is None:
        return Place(dm_workspace(interaction.user.id, settings, interaction.client), None, is_dm=True)
    channel_id = channel_id_for_scope(interaction.channel, interaction.channel_id)
    return Place(str(interaction.guild_id), str(channel_id) if channel_id is not None else None, is_dm=False)


def place_of_message(message: discord.Message, settings: Settings) -> Place:
    # A channel missing from the cache arrives as a PartialMessageable that still knows its guild.
    guild_id = message.guild.id if message.guild is not None else getattr(message.channel, "guild_id", None)
    if guild_id is None:
        client = getattr(getattr(message, "_state", None), "_get_client", lambda: None)()
        return Place(dm_workspace(message.author.id, settings, client), None, is_dm=True)
    channel_id = channel_id_for_scope(message.channel, message.channel.id)
    return Place(str(guild_id), str(channel_id), is_dm=False)


def is_discord_admin(interaction: discord.Interaction, settings: Settings) -> bool:
    """Manage Server in this channel, or any of the configured admin roles. DMs: never."""
    if interaction.guild_id is None:
        return False
    if interaction.permissions.manage_guild or interaction.permissions.administrator:
        return True
    admin_roles = set(settings.discord_admin_role_ids)
    if not admin_roles:
        return False
    member = interaction.user
    # `Member.roles` lists only roles present in the guild cache (empty without the guilds
    # intent or before the guild is loaded); the interaction payload always carries the ids.
    role_ids = {role.id for role in getattr(member, "roles", ())} | set(getattr(member, "_roles", ()))
    return bool(role_ids & admin_roles)


def actor_of(interaction: discord.Interaction, settings: Settings) -> Actor:
    place = place_of(interaction, settings)
    return Actor(
        platform=PLATFORM,
        workspace=place.workspace,
        user_id=str(interaction.user.id),
        is_platform_admin=is_discord_admin(interaction, settings),
    )


def question_of(interaction: discord.Interaction, text: str, settings: Settings, *,
                history: tuple[PriorTurn, ...] = ()) -> Question:
    place = place_of(interaction, settings)
    thread = str(interaction.channel_id) if isinstance(interaction.channel, discord.Thread) else None
    return Question(
        platform=PLATFORM,
        workspace=place.workspace,
        channel=place.channel,
        user=str(interaction.user.id),
        text=text,
        thread=thread,
        history=history,
        request_id=f"discord:{interaction.id}",
    )
