"""One core path, Slack leg: the same questions asked by @mention through the real Bolt app give
the same answers and sources as `Docent.ask` directly (the Discord and CLI legs are in
test_discord_shared_path.py, over the same documents and questions).

Each route has its own data directory, so equal answers come from the same code, not a shared cache.
"""

from __future__ import annotations

from admin.types import Actor
from bot.core import Docent
from bot.types import Question
from connectors.slack import blocks
from knowledge.types import Scope
from tests.connectors.test_discord_shared_path import DOCUMENTS, QUESTIONS
from tests.connectors.test_slack_app import serve
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi, mention_event

CHANNEL = "C0GENERAL"


def _load(settings) -> Docent:
    docent = Docent.from_settings(settings)
    ops = Actor(platform="cli", workspace=TEAM_ID, user_id="ops", is_platform_admin=True)
    for name, data in DOCUMENTS.items():
        docent.admin.upload(ops, name, data, Scope(TEAM_ID, CHANNEL))
    return docent


def _strip_feedback(msg_blocks: list[dict]) -> list[dict]:
    # Feedback buttons carry each route's own request id; everything else must match.
    return [b for b in msg_blocks if b.get("type") != "actions"]


def test_slack_and_direct_give_the_same_answers(settings, tmp_path):
    direct_docent = _load(settings.model_copy(update={"data_dir": tmp_path / "direct"}))
    try:
        direct = [direct_docent.ask(Question("cli", TEAM_ID, CHANNEL, "someone", q)) for q in QUESTIONS]
    finally:
        direct_docent.close()
    assert [str(a.outcome) for a in direct] == ["answered"] * 3 + ["abstained"]

    slack_settings = settings.model_copy(update={"data_dir": tmp_path / "slack"})
    slack_docent = _load(slack_settings)
    try:
        with FakeSlackApi() as fake:
            fake.add_user("U0ASKER")
            with serve(slack_docent, slack_settings, fake) as bot:
                for i, (question, answer) in enumerate(zip(QUESTIONS, direct)):
                    ts = f"17000009{i:02d}.000100"
                    status, _, _ = bot.send(mention_event(question, ts=ts, channel=CHANNEL))
                    assert status == 200
                    final = bot.answer_for(ts, channel=CHANNEL)
                    expected = blocks.answer_messages(answer)[0]
                    assert _strip_feedback(final["blocks"]) == _strip_feedback(list(expected.blocks)), question
    finally:
        slack_docent.close()
