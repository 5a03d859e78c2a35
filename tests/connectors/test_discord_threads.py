"""Follow-ups in threads: "Continue in thread" on /ask answers (and when it isn't offered), the
thread's history going with follow-ups — `/ask` in the thread without the message-content
intent, plain messages with DOCENT_DISCORD_THREAD_FOLLOWUPS — and who is who in that history.
Real client and command tree, real core (hash embedder, offline model), fake Discord REST API."""

from __future__ import annotations

import asyncio

import pytest

from admin.types import Actor
from bot.core import Docent
from bot.types import PriorTurn
from connectors.discord.threads import INTRO_ASK, INTRO_REPLIES, NO_THREAD
from knowledge.types import Scope
from tests.fakes.discord_api import (
    APPLICATION_ID,
    BOT_THREAD_PERMS,
    BOT_USER_ID,
    DiscordHarness,
    button_click,
    channel_message,
    mention_message,
    slash_command,
    thread_channel,
)

GUILD = 800_000_000_000_000_001
CHANNEL = 810_000_000_000_000_001
ASKER, OTHER = 700_000_000_000_000_001, 700_000_000_000_000_042
EPHEMERAL = 64
LEAVE_DOC = (b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year. "
             b"Unused annual leave of up to five days carries over to the next year.\n")
QUESTION = "How many days of paid annual leave do employees receive per year?"
FOLLOW_UP = "How many unused days of annual leave carry over to the next year?"
NO_MENTIONS = {"parse": []}


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings)
    docent.admin.upload(Actor("cli", str(GUILD), "ops", True), "leave.md", LEAVE_DOC, Scope(str(GUILD), str(CHANNEL)))
    yield docent
    docent.close()


@pytest.fixture
def asked(docent, monkeypatch) -> list:
    """Every Question the core is asked, in order."""
    questions = []
    real_ask = docent.ask

    def spy(q, **kwargs):
        questions.append(q)
        return real_ask(q, **kwargs)

    monkeypatch.setattr(docent, "ask", spy)
    return questions


async def harness(docent, settings, **update) -> DiscordHarness:
    return await DiscordHarness.start(docent, settings.model_copy(update=update))


@pytest.fixture
async def bot(docent, settings):
    h = await harness(docent, settings)
    yield h
    await h.close()


def ask(text: str, **kw) -> dict:
    return slash_command("ask", [{"type": 3, "name": "question", "value": text}], **kw)


def buttons_of(message: dict) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


def buttons(call) -> list[str]:
    return buttons_of(call.json)


async def answer_message(bot: DiscordHarness, **kw) -> tuple[dict, str]:
    """Ask QUESTION in CHANNEL (the bot may create threads there); returns (the answer message as
    Discord stores it, the request id)."""
    token = bot.dispatch(ask(QUESTION, app_permissions=BOT_THREAD_PERMS, **kw))
    final = await bot.wait_for_final(token)
    return bot.api.messages[bot.api.originals[token]], f"discord:{token[3:]}"


def posts_in(bot: DiscordHarness, channel_id: str) -> list:
    return [c for c in bot.api.calls if c.method == "POST" and c.path == f"/channels/{channel_id}/messages"]


async def start_thread(bot: DiscordHarness) -> tuple[str, dict, str]:
    """Answer, click "Continue in thread"; returns (thread id, the answer message, the click's token)."""
    message, request_id = await answer_message(bot)
    click = bot.dispatch(button_click(f"docent:thread:{request_id}", message=message, user_id=OTHER))
    await bot.api.wait_for(lambda: bool(posts_in(bot, message["id"])))
    return message["id"], message, click


# --- the button --------------------------------------------------------------------------------------

async def test_continue_in_thread_starts_a_thread_on_the_answer_and_drops_the_button(bot):
    message, request_id = await answer_message(bot)
    assert message["components"][0]["components"][2]["label"] == "Continue in thread"
    assert buttons_of(message) == [f"docent:fb:up:{request_id}", f"docent:fb:down:{request_id}",
                                   f"docent:thread:{request_id}"]

    click = bot.dispatch(button_click(f"docent:thread:{request_id}", message=message, user_id=OTHER))
    await bot.api.wait_for(lambda: bool(posts_in(bot, message["id"])))
    mine = [c for c in bot.api.calls if click in c.path or c.path.startswith("/channels/")]
    assert [(c.method, c.path) for c in mine] == [
        ("POST", f"/interactions/{click[3:]}/{click}/callback"),
        ("POST", f"/channels/{CHANNEL}/messages/{message['id']}/threads"),
        ("PATCH", f"/webhooks/{APPLICATION_ID}/{click}/messages/@original"),
        ("POST", f"/channels/{message['id']}/messages"),
    ]
    callback, create, edit, intro = mine
    assert callback.json == {"type": 6}  # deferred update: the answer stays as it is meanwhile
    assert create.json == {"name": QUESTION, "auto_archive_duration": 1440, "rate_limit_per_user": None}
    assert buttons(edit) == [f"docent:fb:up:{request_id}", f"docent:fb:down:{request_id}"]
    assert intro.json["content"] == INTRO_ASK and intro.json["allowed_mentions"] == NO_MENTIONS


async def test_no_thread_button_where_the_bot_cant_start_threads_or_it_makes_no_sense(bot):
    cases = {
        "no thread permissions": ask(QUESTION),  # app_permissions "0"
        "private answer": slash_command("ask", [{"type": 3, "name": "question", "value": QUESTION},
                                                {"type": 5, "name": "private", "value": True}],
                                        app_permissions=BOT_THREAD_PERMS),
        "already in a thread": ask(QUESTION, channel_id=840_000_000_000_000_001, thread_parent=CHANNEL,
                                   app_permissions=BOT_THREAD_PERMS),
        "a DM": ask(QUESTION, guild_id=None, channel_id=830_000_000_000_000_001, app_permissions=BOT_THREAD_PERMS),
    }
    for case, payload in cases.items():
        final = await bot.wait_for_final(bot.dispatch(payload))
        assert not any(b.startswith("docent:thread:") for b in buttons(final)), case


async def test_refused_thread_is_explained_and_the_button_stays(bot):
    message, request_id = await answer_message(bot)
    bot.api.refuse_threads = (403, 50013)
    click = bot.dispatch(button_click(f"docent:thread:{request_id}", message=message))
    (reply,) = await bot.wait_for_replies(click)
    assert (reply.method, reply.json["content"], reply.json["flags"]) == ("POST", NO_THREAD, EPHEMERAL)
    assert not any(c.method == "PATCH" for c in bot.api.calls_for(click))
    assert bot.api.threads == {}


async def test_a_second_click_links_the_thread_that_exists(bot):
    thread_id, message, _ = await start_thread(bot)
    (stale_button,) = [b for b in buttons_of(message) if b.startswith("docent:thread:")]  # an old copy of the view
    again = bot.dispatch(button_click(stale_button, message=message))
    await bot.api.wait_for(lambda: any(c.method == "POST" and c.path.startswith("/webhooks/")
                                       for c in bot.api.calls_for(again)))
    (link,) = [c for c in bot.api.calls_for(again) if c.method == "POST" and c.path.startswith("/webhooks/")]
    assert link.json["content"] == f"This answer already has a thread: <#{thread_id}>"
    assert link.json["flags"] == EPHEMERAL and len(bot.api.threads) == 1


# --- history -----------------------------------------------------------------------------------------

async def test_ask_in_the_thread_carries_the_thread_so_far(bot, asked):
    thread_id, message, _ = await start_thread(bot)
    first_answer = message["embeds"][0]["description"]
    # Without the message-content intent Discord blanks other people's messages.
    bot.api.add_channel_message(thread_id, channel_message("", author_id=OTHER, channel_id=int(thread_id)))

    token = bot.dispatch(ask(FOLLOW_UP, channel_id=int(thread_id), thread_parent=CHANNEL))
    final = await bot.wait_for_final(token)
    assert "five days" in final.json["embeds"][0]["description"]
    reads = [(c.method, c.path, c.query) for c in bot.api.calls if c.method == "GET" and "/messages" in c.path]
    assert reads == [("GET", f"/channels/{thread_id}/messages", {"limit": "20"}),
                     ("GET", f"/channels/{CHANNEL}/messages/{thread_id}", {})]
    follow_up = asked[-1]
    assert (follow_up.thread, follow_up.channel) == (thread_id, str(CHANNEL))  # the parent's scope
    assert follow_up.history == (PriorTurn("user", QUESTION, to_docent=True), PriorTurn("assistant", first_answer, is_bot=True))

    # Someone else asking next: the first asker's questions are quoted, never theirs.
    other = bot.dispatch(ask("Who approves annual leave?", channel_id=int(thread_id), thread_parent=CHANNEL,
                             user_id=OTHER))
    await bot.wait_for_final(other)
    authors = [t.author for t in asked[-1].history]
    assert authors == ["user1", "assistant", "user1", "assistant"]


async def test_follow_up_messages_in_docents_thread_are_answered_only_when_enabled(docent, settings, asked):
    for enabled in (True, False):
        bot = await harness(docent, settings, discord_thread_followups=enabled)
        try:
            bot.deliver_guild_create(GUILD, (CHANNEL,))
            thread_id, message, _ = await start_thread(bot)
            (intro,) = posts_in(bot, thread_id)
            assert intro.json["content"] == (INTRO_REPLIES if enabled else INTRO_ASK)
            bot.deliver_thread_create(bot.api.threads[thread_id])
            asked_before = len(asked)
            bot.deliver_message(mention_message(FOLLOW_UP, channel_id=int(thread_id), mention=False))
            if not enabled:
                await asyncio.sleep(0.3)  # time enough for a wrongly enabled handler to answer
                assert len(asked) == asked_before and posts_in(bot, thread_id) == [intro]
                continue
            await bot.api.wait_for(lambda: len(posts_in(bot, thread_id)) == 2)
            reply = posts_in(bot, thread_id)[-1]
            assert "five days" in reply.json["embeds"][0]["description"]
            assert str(reply.json["message_reference"]["channel_id"]) == thread_id
            assert reply.json["allowed_mentions"] == {"parse": [], "replied_user": False}
            assert asked[-1].history == (PriorTurn("user", QUESTION, to_docent=True),
                                         PriorTurn("assistant", message["embeds"][0]["description"], is_bot=True))
        finally:
            await bot.close()


async def test_messages_in_threads_docent_didnt_start_are_left_alone(docent, settings, asked):
    bot = await harness(docent, settings, discord_thread_followups=True)
    try:
        bot.deliver_guild_create(GUILD, (CHANNEL,))
        bot.deliver_thread_create(thread_channel(840_000_000_000_000_009, parent_id=CHANNEL, owner_id=OTHER))
        bot.deliver_message(mention_message(FOLLOW_UP, channel_id=840_000_000_000_000_009, mention=False))
        await asyncio.sleep(0.3)
        assert asked == [] and not [c for c in bot.api.calls if c.path.startswith("/channels/")]
    finally:
        await bot.close()
