"""`/docent gaps` on the real Bolt app (signed HTTP on loopback, fake Slack Web API, real core)."""

from __future__ import annotations

import pytest

from bot.core import Docent
from tests.fakes.slack_api import FakeSlackApi, command_fields, mention_event, post_form, serve

QUESTION = "Where is the zeppelin hangar key kept?"


@pytest.fixture
def slack():
    with FakeSlackApi() as fake:
        fake.add_user("U0ASKER")
        fake.add_user("U0ADMIN", admin=True)
        yield fake


def test_gaps_lists_abstained_questions_for_admins_only(settings, slack):
    with Docent.from_settings(settings) as docent, serve(docent, settings, slack) as bot:
        bot.send(mention_event(QUESTION, ts="1700003000.000100"))
        bot.answer_for("1700003000.000100")  # no documents: an abstention in the ledger

        post_form(bot.url, command_fields("gaps", user="U0ASKER", response_url=f"{slack.base_url}/response/g1"))
        post_form(bot.url, command_fields("gaps 7", user="U0ADMIN", response_url=f"{slack.base_url}/response/g2"))
        bot.settle()
        by_id = {c.params["id"]: c.params for c in slack.calls("response_url")}
    assert "only admins can see coverage gaps" in by_id["g1"]["text"]
    report = by_id["g2"]
    assert report["response_type"] == "ephemeral"
    assert report["text"].startswith("```\nCoverage gaps,") and "(7 days)" in report["text"]
    assert f"1× “{QUESTION}” (1 abstained)" in report["text"] and "#C0GENERAL ×1" in report["text"]
