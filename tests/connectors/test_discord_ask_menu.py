"""The message menu "Ask docent": an ephemeral answer from a message's text, linked to it.
Real client and command tree, real core (hash embedder, offline model), fake Discord REST API."""

from __future__ import annotations

import asyncio

import pytest

from admin.types import Actor
from bot.core import Docent
from knowledge.types import Scope
from tests.fakes.discord_api import BOT_THREAD_PERMS, DiscordHarness, channel_message, message_command

GUILD = 800_000_000_000_000_001
CHANNEL = 810_000_000_000_000_001
INVOKER, AUTHOR = 700_000_000_000_000_001, 700_000_000_000_000_042
EPHEMERAL = 64
LEAVE_DOC = b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year.\n"
QUESTION = "How many days of paid annual leave do employees receive per year?"


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings)
    docent.admin.upload(Actor("cli", str(GUILD), "ops", True), "leave.md", LEAVE_DOC, Scope(str(GUILD), str(CHANNEL)))
    yield docent
    docent.close()


@pytest.fixture
def asked(docent, monkeypatch) -> list:
    questions = []
    real_ask = docent.ask
    monkeypatch.setattr(docent, "ask", lambda q, **kw: questions.append(q) or real_ask(q, **kw))
    return questions


@pytest.fixture
async def bot(docent, settings):
    harness = await DiscordHarness.start(docent, settings)
    yield harness
    await harness.close()


async def test_ask_docent_on_someones_message_answers_privately_with_a_link_to_it(bot, asked):
    message = channel_message(QUESTION, author_id=AUTHOR)
    token = bot.dispatch(message_command("Ask docent", message, user_id=INVOKER, app_permissions=BOT_THREAD_PERMS))

    assert (await bot.wait_for_callback(token)).json == {"type": 5, "data": {"flags": EPHEMERAL}}
    final = await bot.wait_for_final(token)
    assert (final.method, final.path.rsplit("/", 1)[-1]) == ("PATCH", "@original")
    (embed,) = final.json["embeds"]
    assert embed["title"] == QUESTION and "25 days" in embed["description"]
    assert embed["url"] == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{message['id']}"
    assert final.json["allowed_mentions"] == {"parse": []}
    # Votes, but no thread: nobody else sees this answer.
    assert [c["custom_id"] for row in final.json["components"] for c in row["components"]] == [
        f"docent:fb:up:discord:{token[3:]}", f"docent:fb:down:discord:{token[3:]}"]
    (question,) = asked
    assert (question.user, question.channel, question.text, question.history) == (
        str(INVOKER), str(CHANNEL), QUESTION, ())
    assert not any(c.path.startswith("/channels/") for c in bot.api.calls)  # nothing posted in the channel


async def test_a_message_without_text_is_refused_without_asking(bot, asked):
    token = bot.dispatch(message_command("Ask docent", channel_message("", author_id=AUTHOR)))
    callback = await bot.wait_for_callback(token)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] == EPHEMERAL
    assert callback.json["data"]["content"] == "That message has no text I can ask about."
    await asyncio.sleep(0.1)
    assert asked == []
