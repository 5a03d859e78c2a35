"""`/docs gaps` end to end: questions asked on Discord that docent abstained on or that got 👎
(with the modal's comment) come back grouped, to admins only, ephemeral, pinging no one."""

from __future__ import annotations

import pytest

from admin.types import Actor
from bot.core import Docent
from knowledge.types import Scope
from tests.fakes.discord_api import DiscordHarness, button_click, modal_submit, slash_command

GUILD = 800_000_000_000_000_001
CHANNEL, OTHER_CHANNEL = 810_000_000_000_000_001, 810_000_000_000_000_002
ASKER, ADMIN = 700_000_000_000_000_001, 700_000_000_000_000_005
EPHEMERAL = 64
LEAVE_DOC = b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year.\n"
LEAVE_QUESTION = "How many days of paid annual leave do employees receive per year?"
HANGAR = ("Where is the zeppelin hangar key kept?", "Where is the key of the zeppelin hangar kept?")


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings)
    docent.admin.upload(Actor("cli", str(GUILD), "ops", True), "leave.md", LEAVE_DOC, Scope(str(GUILD), str(CHANNEL)))
    yield docent
    docent.close()


@pytest.fixture
async def bot(docent, settings):
    harness = await DiscordHarness.start(docent, settings)
    yield harness
    await harness.close()


def ask(text: str, **kw) -> dict:
    return slash_command("ask", [{"type": 3, "name": "question", "value": text}], **kw)


def gaps(*, admin: bool, scope: str | None = None) -> dict:
    options = [{"type": 4, "name": "days", "value": 7}] + ([{"type": 3, "name": "scope", "value": scope}]
                                                            if scope else [])
    return slash_command("docs", options, subcommand="gaps", admin=admin, user_id=ADMIN if admin else ASKER)


async def test_gaps_group_abstentions_and_thumbs_down_for_admins_only(bot, docent):
    await bot.wait_for_final(bot.dispatch(ask(HANGAR[0])))
    await bot.wait_for_final(bot.dispatch(ask(HANGAR[1], channel_id=OTHER_CHANNEL)))
    answered = await bot.wait_for_final(bot.dispatch(ask(LEAVE_QUESTION)))
    down = answered.json["components"][0]["components"][1]["custom_id"]
    click = bot.dispatch(button_click(down, user_id=ASKER))
    await bot.wait_for_callback(click)
    await bot.wait_for_callback(bot.dispatch(modal_submit(f"docent:fb:why:{click[3:]}",
                                                          {"comment": "It ignores part-time staff"}, user_id=ASKER)))

    refused = bot.dispatch(gaps(admin=False))
    callback = await bot.wait_for_callback(refused)
    assert callback.json["data"]["content"] == ("Sorry — only server admins (Manage Server) can see coverage gaps. "
                                                "Nothing was changed.")
    assert callback.json["data"]["flags"] == EPHEMERAL

    token = bot.dispatch(gaps(admin=True))
    assert (await bot.wait_for_callback(token)).json == {"type": 5, "data": {"flags": EPHEMERAL}}
    (reply,) = await bot.wait_for_replies(token)
    assert reply.method == "POST" and reply.json["flags"] == EPHEMERAL
    assert reply.json["allowed_mentions"] == {"parse": []}  # asker mentions are shown, never pinged
    (embed,) = reply.json["embeds"]
    assert embed["title"] == "Coverage gaps"
    text = embed["description"]
    assert text.startswith("3 question(s) docent abstained on or that got 👎 in the last 7 days, in 2 group(s)")
    hangar, leave = text.split("\n**")[1:]
    assert hangar.startswith("1. 2×** “Where is the") and "— 2 abstained" in hangar
    assert f"<#{CHANNEL}> ×1" in hangar and f"<#{OTHER_CHANNEL}> ×1" in hangar
    assert f"asked by <@{ASKER}>" in hangar
    assert leave.startswith(f"2. 1×** “{LEAVE_QUESTION}” — 1 👎")
    assert "-# 💬 “It ignores part-time staff”" in leave

    here = bot.dispatch(gaps(admin=True, scope="channel"))
    (reply,) = await bot.wait_for_replies(here)
    assert reply.json["embeds"][0]["description"].startswith(f"2 question(s) in <#{CHANNEL}> docent abstained on")
