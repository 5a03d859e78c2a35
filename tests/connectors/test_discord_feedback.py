"""👎 asks what was wrong: the modal, the redacted comment stored with the vote, and the fallback
when Discord refuses the modal. Real client and command tree, real core, fake Discord REST API."""

from __future__ import annotations

import asyncio

import pytest

from admin.types import Actor
from bot.core import Docent
from knowledge.types import Scope
from tests.fakes.discord_api import DiscordHarness, button_click, modal_submit, slash_command

GUILD = 800_000_000_000_000_001
EPHEMERAL = 64
LEAVE_DOC = b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year.\n"
LEAVE_QUESTION = "How many days of paid annual leave do employees receive per year?"
VOTER, OTHER_VOTER = 700_000_000_000_000_042, 700_000_000_000_000_043
THANKS_DOWN = "Thanks — noted. An admin can review unhelpful answers."


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings)
    docent.admin.upload(Actor("cli", str(GUILD), "ops", True), "leave.md", LEAVE_DOC, Scope.workspace_wide(str(GUILD)))
    yield docent
    docent.close()


@pytest.fixture
async def bot(docent, settings):
    harness = await DiscordHarness.start(docent, settings)
    yield harness
    await harness.close()


async def answered(bot: DiscordHarness) -> tuple[str, str]:
    """Ask; returns (the 👎 button's custom id, the answer's request id)."""
    final = await bot.wait_for_final(bot.dispatch(slash_command("ask", [
        {"type": 3, "name": "question", "value": LEAVE_QUESTION}])))
    down = final.json["components"][0]["components"][1]["custom_id"]
    return down, down.split(":", 3)[3]


def callbacks(bot: DiscordHarness, token: str) -> list[dict]:
    return [c.json for c in bot.api.calls_for(token) if c.path.endswith("/callback")]


async def eventually(check, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_thumbs_down_opens_a_modal_and_stores_the_redacted_comment_with_the_vote(bot, docent):
    down, request_id = await answered(bot)
    click = bot.dispatch(button_click(down, user_id=VOTER))
    callback = await bot.wait_for_callback(click)
    modal_id = f"docent:fb:why:{click[3:]}"  # the click's interaction id: one modal per voter
    assert callback.json == {"type": 9, "data": {
        "custom_id": modal_id,
        "title": "What was wrong with this answer?",
        "components": [{
            "type": 18, "label": "What was wrong? (optional)",
            "description": "Admins read these to choose which documents to add.",
            "component": {"type": 4, "custom_id": "comment", "style": 2, "label": None, "required": False,
                          "max_length": 1000,
                          "placeholder": "e.g. it cited last year's policy; the answer is in the onboarding guide"},
        }],
    }}
    # The 👎 counts at once, even if the modal is dismissed.
    await eventually(lambda: docent.admin.registry.feedback(request_id) == {str(VOTER): False})
    assert docent.admin.registry.feedback_comments(request_id) == {}

    submit = bot.dispatch(modal_submit(modal_id, {"comment": "Wrong year — ask jane.doe@example.com"}, user_id=VOTER))
    reply = await bot.wait_for_callback(submit)
    assert reply.json["type"] == 4 and reply.json["data"]["content"] == THANKS_DOWN
    assert reply.json["data"]["flags"] == EPHEMERAL and reply.json["data"]["allowed_mentions"] == {"parse": []}
    assert docent.admin.registry.feedback(request_id) == {str(VOTER): False}
    assert docent.admin.registry.feedback_comments(request_id) == {str(VOTER): "Wrong year — ask [EMAIL]"}


async def test_two_voters_get_their_own_modals(bot, docent):
    down, request_id = await answered(bot)
    first = bot.dispatch(button_click(down, user_id=VOTER))
    second = bot.dispatch(button_click(down, user_id=OTHER_VOTER))
    await bot.wait_for_callback(first)
    await bot.wait_for_callback(second)
    for token, user, text in ((second, OTHER_VOTER, "too vague"), (first, VOTER, "cites the old policy")):
        submitted = bot.dispatch(modal_submit(f"docent:fb:why:{token[3:]}", {"comment": text}, user_id=user))
        assert (await bot.wait_for_callback(submitted)).json["data"]["content"] == THANKS_DOWN
    assert docent.admin.registry.feedback_comments(request_id) == {
        str(VOTER): "cites the old policy", str(OTHER_VOTER): "too vague"}


async def test_refused_modal_falls_back_to_the_plain_vote(bot, docent):
    down, request_id = await answered(bot)
    bot.api.refuse_callback_types = {9}
    click = bot.dispatch(button_click(down, user_id=VOTER))
    await bot.api.wait_for(lambda: len(callbacks(bot, click)) == 2)
    modal, plain = callbacks(bot, click)
    assert modal["type"] == 9
    assert plain["type"] == 4 and plain["data"]["content"] == THANKS_DOWN and plain["data"]["flags"] == EPHEMERAL
    assert docent.admin.registry.feedback(request_id) == {str(VOTER): False}
    assert docent.admin.registry.feedback_comments(request_id) == {}
