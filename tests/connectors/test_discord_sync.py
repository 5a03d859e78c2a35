"""Command registration (`docent discord sync`) against the fake Discord API."""

from __future__ import annotations

import discord
import pytest
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from connectors.discord.bot import MissingToken, intents_for, run, sync_once
from tests.fakes.discord_api import APPLICATION_ID, FakeDiscordAPI

MANAGE_GUILD = discord.Permissions(manage_guild=True).value


@pytest.fixture
async def api(monkeypatch):
    # sync_once moves these process-wide class attributes; monkeypatch puts them back.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    fake = await FakeDiscordAPI().start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("guild_id", [None, 123456789012345678])
async def test_sync_registers_the_commands_with_admin_permissions_on_docs(api, settings, guild_id):
    settings = settings.model_copy(update={"discord_api_url": api.api_base, "discord_token": SecretStr("t")})
    names = await sync_once(None, settings, guild_id)
    assert sorted(names) == ["Ask docent", "ask", "caps", "docs", "usage"]

    (put,) = [c for c in api.calls if c.method == "PUT"]
    expected_path = f"/applications/{APPLICATION_ID}" + (f"/guilds/{guild_id}" if guild_id else "") + "/commands"
    assert put.path == expected_path
    commands = {c["name"]: c for c in put.json}
    # Discord honours default permissions on top-level commands only: /docs carries them.
    assert int(commands["docs"]["default_member_permissions"]) == MANAGE_GUILD
    assert int(commands["caps"]["default_member_permissions"]) == MANAGE_GUILD
    assert {o["name"] for o in commands["caps"]["options"]} == {"set", "clear", "list"}
    assert commands["ask"]["default_member_permissions"] is None
    assert {o["name"] for o in commands["docs"]["options"]} == {"upload", "list", "remove", "gaps"}
    assert commands["Ask docent"]["type"] == 3  # a message context menu: no options, no description
    ask_options = {o["name"]: o for o in commands["ask"]["options"]}
    assert ask_options["question"]["required"] is True and ask_options["private"]["required"] is False
    remove = next(o for o in commands["docs"]["options"] if o["name"] == "remove")
    assert remove["options"][0]["autocomplete"] is True
    # The gateway was looked up on the configured API, not Discord's default.
    assert str(DiscordWebSocket.DEFAULT_GATEWAY).startswith("ws://127.0.0.1")


def test_message_content_intent_only_when_answering_mentions_or_thread_follow_ups(settings):
    assert not intents_for(settings).message_content
    assert intents_for(settings.model_copy(update={"discord_answer_mentions": True})).message_content
    follow_ups = intents_for(settings.model_copy(update={"discord_thread_followups": True}))
    assert follow_ups.message_content and follow_ups.guild_messages


def test_run_without_a_token_says_what_to_set(settings):
    with pytest.raises(MissingToken, match="DISCORD_TOKEN"):
        run(None, settings)  # type: ignore[arg-type]


async def test_running_bot_syncs_to_the_development_guild_at_start(api, settings):
    from connectors.discord.bot import build_client

    settings = settings.model_copy(update={"discord_api_url": api.api_base, "discord_dev_guild_id": 42})
    client = build_client(None, settings, sync_dev_guild=True)
    try:
        await client.login("t")  # runs setup_hook, as client.run does before connecting
    finally:
        await client.close()
    assert [c.path for c in api.calls if c.method == "PUT"] == [f"/applications/{APPLICATION_ID}/guilds/42/commands"]
