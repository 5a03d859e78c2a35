"""docent's slash commands, end to end: the real discord.py client and command tree, the real
Docent core (hash embedder, offline extractive model, SQLite, Qdrant Edge in a tmp dir), and a
loopback fake of Discord's REST API that records what the bot sent back.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from admin.types import Actor
from bot.core import Docent
from knowledge.types import Scope
from tests.fakes.discord_api import DiscordHarness, attachment, button_click, slash_command

GUILD = 800_000_000_000_000_001
CHANNEL = 810_000_000_000_000_001
OTHER_CHANNEL = 810_000_000_000_000_002
ADMIN_ROLE = 820_000_000_000_000_001
EPHEMERAL = 64

LEAVE_DOC = (
    b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year. "
    b"Unused annual leave of up to five days carries over to the next year.\n"
)
LEAVE_QUESTION = "How many days of paid annual leave do employees receive per year?"
ROCKET_DOC = (
    b"# Rocket launch checklist\n\nThe rocket launch window opens at dawn. "
    b"The launch checklist requires two engineers to sign the fuel inspection.\n"
)
ROCKET_QUESTION = "Who must sign the fuel inspection on the rocket launch checklist?"


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings)
    yield docent
    docent.close()


@pytest.fixture
async def bot(docent, settings):
    harness = await DiscordHarness.start(docent, settings.model_copy(update={"discord_admin_role_ids": [ADMIN_ROLE]}))
    yield harness
    await harness.close()


def operator(workspace: str = str(GUILD)) -> Actor:
    return Actor(platform="cli", workspace=workspace, user_id="ops", is_platform_admin=True)


def ask(question: str, *, private: bool | None = None, **kw) -> dict:
    options = [{"type": 3, "name": "question", "value": question}]
    if private is not None:
        options.append({"type": 5, "name": "private", "value": private})
    return slash_command("ask", options, **kw)


def upload(bot: DiscordHarness, filename: str, data: bytes, *, scope: str | None = None, size: int | None = None,
           fail_download: bool = False, **kw) -> dict:
    att = attachment(bot.api, filename, data, size=size, fail_download=fail_download)
    options = [{"type": 11, "name": "file", "value": att["id"]}]
    if scope is not None:
        options.append({"type": 3, "name": "scope", "value": scope})
    return slash_command("docs", options, subcommand="upload", attachments={att["id"]: att}, **kw)


async def final_embeds(bot: DiscordHarness, token: str) -> list[dict]:
    return (await bot.wait_for_final(token)).json["embeds"]


async def ephemeral_reply(bot: DiscordHarness, token: str) -> str:
    """The text of a command's ephemeral reply: an immediate one, or the follow-up after a defer."""
    callback = await bot.wait_for_callback(token)
    data = callback.json.get("data") or {}
    assert int(data.get("flags", 0)) & EPHEMERAL, callback.json
    if callback.json["type"] == 4:
        return data["content"]
    (reply,) = await bot.wait_for_replies(token)
    assert reply.json["flags"] & EPHEMERAL
    return reply.json["content"]


def sources_of(embeds: list[dict]) -> str:
    return "\n".join(f["value"] for e in embeds for f in e.get("fields", []) if f["name"].startswith("Sources"))


# --- /ask ------------------------------------------------------------------------------------------

async def test_ask_defers_then_answers_with_cited_sources_and_feedback_buttons(bot, docent):
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    token = bot.dispatch(ask(LEAVE_QUESTION))

    callback = await bot.wait_for_callback(token)
    assert callback.json["type"] == 5  # deferred: "docent is thinking…"
    assert not int((callback.json.get("data") or {}).get("flags", 0)) & EPHEMERAL
    assert callback.at <= min(c.at for c in bot.api.replies_for(token) or [callback])  # deferral came first

    final = await bot.wait_for_final(token)
    (embed,) = final.json["embeds"]
    assert "25 days" in embed["description"] and "[1]" in embed["description"]
    assert "`[1]` Annual leave" in sources_of([embed])
    assert embed["title"] == LEAVE_QUESTION
    assert re.fullmatch(r"\d+\.\d s · \S+", embed["footer"]["text"])  # latency · model
    buttons = [c["custom_id"] for row in final.json["components"] for c in row["components"]]
    assert buttons == [f"docent:fb:up:discord:{token[3:]}", f"docent:fb:down:discord:{token[3:]}"]


async def test_private_ask_is_ephemeral(bot, docent):
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    token = bot.dispatch(ask(LEAVE_QUESTION, private=True))
    callback = await bot.wait_for_callback(token)
    assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert "25 days" in (await final_embeds(bot, token))[0]["description"]


async def test_feedback_click_is_stored(bot, docent):
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    token = bot.dispatch(ask(LEAVE_QUESTION))
    final = await bot.wait_for_final(token)
    up = final.json["components"][0]["components"][0]["custom_id"]

    click = bot.dispatch(button_click(up, user_id=700_000_000_000_000_042))
    callback = await bot.wait_for_callback(click)
    assert callback.json == {"type": 4, "data": {"tts": False, "content": "Thanks — noted.", "flags": EPHEMERAL,
                                                 "allowed_mentions": {"parse": []}}}
    request_id = up.split(":", 3)[3]
    assert docent.admin.registry.feedback(request_id) == {"700000000000000042": True}


async def test_dm_sees_no_server_documents_by_default(bot, docent):
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    token = bot.dispatch(ask(LEAVE_QUESTION, guild_id=None, channel_id=830_000_000_000_000_001))
    (embed,) = await final_embeds(bot, token)
    assert "25 days" not in embed["description"]
    assert sources_of([embed]) == ""


# --- /docs upload: admins only, scoped to the channel ----------------------------------------------

async def test_non_admin_upload_is_refused_and_nothing_is_stored(bot, docent):
    token = bot.dispatch(upload(bot, "leave.md", LEAVE_DOC, admin=False))
    assert "only server admins" in await ephemeral_reply(bot, token)
    assert bot.api.downloads == []  # refused before downloading anything
    assert docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL))) == []


async def test_admin_upload_is_answerable_in_that_channel_only(bot, docent):
    token = bot.dispatch(upload(bot, "rocket.md", ROCKET_DOC, admin=True))
    assert "Added **rocket.md**" in await ephemeral_reply(bot, token)
    (record,) = docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL)))
    assert (record.channel, record.uploaded_by) == (str(CHANNEL), "700000000000000001")

    here = await final_embeds(bot, bot.dispatch(ask(ROCKET_QUESTION, channel_id=CHANNEL)))
    assert "two engineers" in here[0]["description"]
    assert "Rocket launch checklist" in sources_of(here)

    elsewhere = await final_embeds(bot, bot.dispatch(ask(ROCKET_QUESTION, channel_id=OTHER_CHANNEL)))
    assert "two engineers" not in elsewhere[0]["description"]
    assert sources_of(elsewhere) == ""


async def test_configured_admin_role_may_upload_server_wide(bot, docent):
    token = bot.dispatch(upload(bot, "rocket.md", ROCKET_DOC, scope="server", admin=False, roles=(ADMIN_ROLE,)))
    assert "for the whole server" in await ephemeral_reply(bot, token)
    elsewhere = await final_embeds(bot, bot.dispatch(ask(ROCKET_QUESTION, channel_id=OTHER_CHANNEL)))
    assert "two engineers" in elsewhere[0]["description"]


async def test_thread_inherits_its_parent_channel_scope(bot, docent):
    docent.admin.upload(operator(), "rocket.md", ROCKET_DOC, Scope(str(GUILD), str(CHANNEL)))
    in_thread = ask(ROCKET_QUESTION, channel_id=840_000_000_000_000_001, thread_parent=CHANNEL)
    embeds = await final_embeds(bot, bot.dispatch(in_thread))
    assert "two engineers" in embeds[0]["description"]

    other_thread = ask(ROCKET_QUESTION, channel_id=840_000_000_000_000_002, thread_parent=OTHER_CHANNEL)
    embeds = await final_embeds(bot, bot.dispatch(other_thread))
    assert sources_of(embeds) == ""


@pytest.mark.parametrize(
    "filename, data, size, fail, expected",
    [
        ("huge.pdf", b"%PDF-1.4 small", 26 * 1024 * 1024, False, "the limit is 25.0 MB"),
        ("tool.exe", b"MZ binary", None, False, "'.exe' files aren't supported"),
        ("empty.txt", b"", None, False, "the file has no text"),
        ("blank.txt", b"   \n\t ", None, False, "the file has no text"),
        ("lost.md", LEAVE_DOC, None, True, "couldn't download the file"),
        ("fake.pdf", b"this is not a pdf at all", None, False, "fake.pdf"),
    ],
)
async def test_bad_attachments_get_a_clear_error_and_nothing_is_stored(bot, docent, filename, data, size, fail, expected):
    token = bot.dispatch(upload(bot, filename, data, size=size, fail_download=fail, admin=True))
    reply = await ephemeral_reply(bot, token)
    assert expected in reply and "nothing was stored" in reply
    assert docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL))) == []
    if size is not None:
        assert bot.api.downloads == []  # the size check comes before the download


# --- /docs list and remove -------------------------------------------------------------------------

async def test_list_shows_channel_and_server_documents(bot, docent):
    docent.admin.upload(operator(), "rocket.md", ROCKET_DOC, Scope(str(GUILD), str(CHANNEL)))
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    token = bot.dispatch(slash_command("docs", [], subcommand="list"))
    await bot.wait_for_callback(token)
    (reply,) = await bot.wait_for_replies(token)
    text = reply.json["embeds"][0]["description"]
    assert "**rocket.md**" in text and f"<#{CHANNEL}>" in text
    assert "**leave.md**" in text and "server-wide" in text


async def test_remove_autocompletes_names_and_is_admin_only(bot, docent):
    docent.admin.upload(operator(), "rocket.md", ROCKET_DOC, Scope(str(GUILD), str(CHANNEL)))
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope(str(GUILD), str(CHANNEL)))

    typing = slash_command("docs", [{"type": 3, "name": "name", "value": "ro", "focused": True}],
                           subcommand="remove", autocomplete=True, admin=True)
    callback = await bot.wait_for_callback(bot.dispatch(typing))
    assert callback.json == {"type": 8, "data": {"choices": [{"name": "rocket.md", "value": "rocket.md"}]}}

    refused = bot.dispatch(slash_command("docs", [{"type": 3, "name": "name", "value": "rocket.md"}],
                                         subcommand="remove", admin=False))
    assert "only server admins" in await ephemeral_reply(bot, refused)
    assert len(docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL)))) == 2

    removed = bot.dispatch(slash_command("docs", [{"type": 3, "name": "name", "value": "rocket.md"}],
                                         subcommand="remove", admin=True))
    assert "Removed **rocket.md**" in await ephemeral_reply(bot, removed)
    assert [d.name for d in docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL)))] == ["leave.md"]
    gone = await final_embeds(bot, bot.dispatch(ask(ROCKET_QUESTION)))
    assert "two engineers" not in gone[0]["description"]


# --- /usage ----------------------------------------------------------------------------------------

def _user_option(user_id: int) -> tuple[list[dict], dict]:
    user = {"id": str(user_id), "username": "someone", "discriminator": "0", "avatar": None, "global_name": None}
    return [{"type": 6, "name": "user", "value": str(user_id)}], {str(user_id): user}


async def test_usage_own_for_members_anyones_for_admins(bot, docent):
    docent.admin.upload(operator(), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    await bot.wait_for_final(bot.dispatch(ask(LEAVE_QUESTION)))

    own = bot.dispatch(slash_command("usage", []))
    await bot.wait_for_callback(own)
    (reply,) = await bot.wait_for_replies(own)
    assert reply.json["flags"] & EPHEMERAL
    assert "Usage of <@700000000000000001>" in reply.json["embeds"][0]["description"]

    options, users = _user_option(700_000_000_000_000_009)
    snooping = bot.dispatch(slash_command("usage", options, users=users, admin=False))
    assert "only server admins" in await ephemeral_reply(bot, snooping)

    options, users = _user_option(700_000_000_000_000_009)
    by_admin = bot.dispatch(slash_command("usage", options + [{"type": 5, "name": "chart", "value": True}],
                                          users=users, admin=True, user_id=700_000_000_000_000_005))
    await bot.wait_for_callback(by_admin)
    (reply,) = await bot.wait_for_replies(by_admin)
    assert "Usage of <@700000000000000009>" in reply.json["embeds"][0]["description"]
    assert reply.files["usage.png"].startswith(b"\x89PNG")


# --- @mentions (off by default) ----------------------------------------------------------------------

async def test_mentions_are_answered_only_when_enabled(docent, settings):
    from tests.fakes.discord_api import mention_message

    docent.admin.upload(operator(), "rocket.md", ROCKET_DOC, Scope(str(GUILD), str(CHANNEL)))
    for enabled in (False, True):
        harness = await DiscordHarness.start(docent, settings.model_copy(update={"discord_answer_mentions": enabled}))
        try:
            harness.deliver_message(mention_message(ROCKET_QUESTION))
            if enabled:
                await harness.api.wait_for(
                    lambda: any(c.path == f"/channels/{CHANNEL}/messages" for c in harness.api.calls))
                (reply,) = [c for c in harness.api.calls if c.path == f"/channels/{CHANNEL}/messages"]
                assert "two engineers" in reply.json["embeds"][0]["description"]
                assert reply.json["message_reference"]["message_id"]
            else:
                await asyncio.sleep(0.3)  # give a wrongly enabled handler time to reply
                assert not any(c.path.startswith("/channels/") for c in harness.api.calls)
        finally:
            await harness.close()


# --- links and mentions from documents and the model ---------------------------------------------

TRAP_DOC = (
    b"# Pricing https://evil.example/pwn?x=1 @everyone\n\n"
    b"## Refunds https://evil.example/steal\n\n"
    b"Refunds are paid within thirty days of the request.\n"
)


def _message_payloads(api) -> list[dict]:
    """Every message body docent sent: interaction replies, follow-ups, edits, channel posts."""
    bodies = []
    for call in api.calls:
        body = call.json or {}
        if call.path.endswith("/callback"):
            body = body.get("data") or {}
        if body.get("content") or body.get("embeds"):
            bodies.append(body)
    return bodies


def _outside_code(text: str) -> str:
    return re.sub(r"`[^`]*`", "", text)


async def test_no_message_can_mention_anyone_and_document_urls_are_inert(settings):
    from tests.fakes.chat_model import FakeChatModel

    reply = f"@everyone @here Refunds are paid within thirty days [1]. <@&{ADMIN_ROLE}> <@700000000000000009>"
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(reply=reply))
    from tests.fakes.discord_api import mention_message

    bot = await DiscordHarness.start(docent, settings.model_copy(update={"discord_answer_mentions": True}))
    try:
        docent.admin.upload(operator(), "pricing.md", TRAP_DOC, Scope.workspace_wide(str(GUILD)))
        sources = sources_of(await final_embeds(bot, bot.dispatch(ask("How fast are refunds paid?"))))
        bot.deliver_message(mention_message("How fast are refunds paid?"))
        await bot.api.wait_for(lambda: any(c.path == f"/channels/{CHANNEL}/messages" for c in bot.api.calls))
        listed = bot.dispatch(slash_command("docs", [], subcommand="list"))
        await bot.wait_for_callback(listed)
        (listing,) = await bot.wait_for_replies(listed)
        removed = bot.dispatch(slash_command("docs", [{"type": 3, "name": "name", "value": "pricing.md"}],
                                             subcommand="remove", admin=True))
        assert "Removed" in await ephemeral_reply(bot, removed)
        payloads = _message_payloads(bot.api)
    finally:
        await bot.close()
        docent.close()
    assert "`https://evil.example/pwn?x=1`" in sources and "`https://evil.example/steal`" in sources
    assert "http" not in _outside_code(sources)
    titles = listing.json["embeds"][0]["description"]
    assert "`https://evil.example/pwn?x=1`" in titles and "http" not in _outside_code(titles)
    assert "@everyone" not in titles  # escaped: shown, never a mention
    assert len(payloads) >= 4
    # Discord pings no one, whatever the text says: no parsed mentions, no listed users or roles.
    mentions = [p.get("allowed_mentions") or {"missing": True} for p in payloads]
    assert [m for m in mentions if m.get("parse") != [] or set(m) - {"parse", "replied_user"}
            or m.get("replied_user")] == []


# --- /caps -----------------------------------------------------------------------------------------

async def test_caps_are_set_listed_and_cleared_by_admins_only(bot, docent):
    member = 700_000_000_000_000_009
    options, users = _user_option(member)
    refused = bot.dispatch(slash_command("caps", options + [{"type": 10, "name": "amount", "value": 2.5}],
                                         subcommand="set", users=users, admin=False))
    assert "only server admins" in await ephemeral_reply(bot, refused)
    assert docent.admin.user_caps(operator(), str(GUILD)) == []

    options, users = _user_option(member)
    done = bot.dispatch(slash_command("caps", options + [{"type": 10, "name": "amount", "value": 2.5}],
                                      subcommand="set", users=users, admin=True))
    assert f"<@{member}> may now spend up to $2.50 a day" in await ephemeral_reply(bot, done)
    (cap,) = docent.admin.user_caps(operator(), str(GUILD))
    assert (cap.user, cap.daily_cap_usd, cap.set_by) == (str(member), 2.5, "700000000000000001")
    # The budget guard reads the override on the next question.
    assert docent.guards.budget.user_cap_microusd(str(GUILD), str(member)) == 2_500_000

    listed = bot.dispatch(slash_command("caps", [], subcommand="list", admin=True))
    callback = await bot.wait_for_callback(listed)
    assert f"<@{member}> — $2.50 a day" in callback.json["data"]["embeds"][0]["description"]

    options, users = _user_option(member)
    cleared = bot.dispatch(slash_command("caps", options, subcommand="clear", users=users, admin=True))
    assert "back to the default cap of $1.00" in await ephemeral_reply(bot, cleared)
    assert docent.admin.user_caps(operator(), str(GUILD)) == []
