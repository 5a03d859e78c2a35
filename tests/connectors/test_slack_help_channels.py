"""Help channels (`/docent autoanswer on|off`: unmentioned questions answered only when sure) and
who to ask instead (`/docent experts`: the one mention docent ever makes, on abstentions), through
the real Bolt app over signed HTTP against the fake Web API."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from admin.types import Actor
from bot.core import Docent
from bot.types import Outcome, Source
from connectors.slack.help_channels import autoanswer_min_score, parse_expert
from knowledge.types import Scope
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.slack_api import (
    TEAM_ID,
    FakeFile,
    FakeSlackApi,
    command_fields,
    mention_event,
    message_event,
    post_form,
    serve,
)

HANDBOOK = (
    "# Leave policy\n\nEvery employee receives twenty-five vacation days per calendar year. "
    "Unused vacation days carry over until March 31 of the following year.\n"
)
SURE = "How many vacation days does every employee receive per calendar year?"
OFF_TOPIC = "Which zeppelin hangar door code opens the north gate?"


@pytest.fixture
def slack():
    with FakeSlackApi(agent_features=True) as fake:
        fake.add_user("U0ASKER")
        fake.add_user("U0ADMIN", admin=True)
        yield fake


@pytest.fixture
def docent(settings):
    d = Docent.from_settings(settings)  # the offline extractive answerer
    d.admin.upload(Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True), "handbook.md", HANDBOOK.encode(),
                   Scope(TEAM_ID, "C0HELP"))
    yield d
    d.close()


def _command(bot, slack, text: str, user: str, rid: str, channel: str = "C0HELP") -> str:
    post_form(bot.url, command_fields(text, user=user, channel=channel, response_url=f"{slack.base_url}/response/{rid}"))
    bot.settle()
    return slack.calls("response_url")[-1].params["text"]


def _docent_posts(slack) -> list:
    return [c for c in slack.calls() if c.method in ("chat.postMessage", "chat.startStream") and c.ok]


def test_autoanswer_is_for_admins_and_answers_unmentioned_questions_only_when_sure(docent, settings, slack):
    low = settings.model_copy(update={"slack_autoanswer_min_score": 0.05})
    with serve(docent, low, slack) as bot:
        bot.send(message_event(SURE, channel="C0HELP", ts="1700005000.000100"))
        bot.settle()
        assert _docent_posts(slack) == []  # not a help channel yet

        assert "only admins" in _command(bot, slack, "autoanswer on", "U0ASKER", "a1")
        assert "is *on* here" in _command(bot, slack, "autoanswer on", "U0ADMIN", "a2")
        assert "is *on* here" in _command(bot, slack, "autoanswer", "U0ASKER", "a3")

        bot.send(message_event(SURE, channel="C0HELP", ts="1700005000.000200"))
        bot.settle()
        (post,) = _docent_posts(slack)
        # Posted once it was sure: in the question's thread, no placeholder or stream first.
        assert post.method == "chat.postMessage" and post.params["thread_ts"] == "1700005000.000200"
        assert "twenty-five" in json.dumps(post.params["blocks"]) and "*Sources*" in json.dumps(post.params["blocks"])

        bot.send(message_event(OFF_TOPIC, channel="C0HELP", ts="1700005000.000300"))
        bot.send(message_event("pizza at noon?", channel="C0HELP", ts="1700005000.000400", thread_ts="1700005000.000100"))
        bot.settle()
        assert len(_docent_posts(slack)) == 1  # an abstention, a reply in someone's thread: silence

    strict = settings.model_copy(update={"slack_autoanswer_min_score": 0.999})
    with serve(docent, strict, slack) as bot:
        bot.send(message_event(SURE, channel="C0HELP", ts="1700005000.000500"))
        bot.settle()
        assert len(_docent_posts(slack)) == 1  # answerable, but not sure enough: silence
        assert "is *off* here" in _command(bot, slack, "autoanswer off", "U0ADMIN", "a4")
    assert docent.admin.channel_settings("slack", TEAM_ID, "C0HELP").autoanswer is False
    # Silence still leaves a trace for admins: the abstention is in the ledger like any other.
    from sqlmodel import select

    from admin.models import RequestRecord
    with docent.db.session() as session:
        outcomes = [r.outcome for r in session.exec(select(RequestRecord).where(RequestRecord.channel == "C0HELP"))]
    assert outcomes.count("abstained") == 1


def test_a_mention_in_a_help_channel_is_answered_once(docent, settings, slack):
    docent.admin.set_autoanswer(Actor("slack", TEAM_ID, "U0ADMIN", True), "C0HELP", True)
    low = settings.model_copy(update={"slack_autoanswer_min_score": 0.05})
    with serve(docent, low, slack) as bot:
        text = f"<@U0DOCENT> {SURE}"
        bot.send(message_event(text, channel="C0HELP", ts="1700005100.000100"))
        bot.send(mention_event(SURE, channel="C0HELP", ts="1700005100.000100"))
        bot.settle()
    assert len(_docent_posts(slack)) == 1


def test_default_autoanswer_score_is_halfway_from_the_gates_threshold_to_certainty(docent, settings):
    assert autoanswer_min_score(settings, 0.5) == 0.75
    assert autoanswer_min_score(settings.model_copy(update={"slack_autoanswer_min_score": 0.9}), 0.5) == 0.9
    threshold = docent.answerability.threshold
    assert threshold < autoanswer_min_score(settings, threshold) < 1.0


# --- experts ----------------------------------------------------------------------------------------
def _final(bot, ts: str, channel: str = "C0HELP") -> str:
    return json.dumps(bot.answer_for(ts, channel=channel))


def test_experts_are_named_only_when_docent_abstains(docent, settings, slack):
    with serve(docent, settings, slack) as bot:
        assert "only admins" in _command(bot, slack, "experts <@U0EXPERT|expert>", "U0ASKER", "e1")
        assert "one person or one user group" in _command(bot, slack, "experts <@U0A|a> <@U0B|b>", "U0ADMIN", "e2")
        assert "`U0EXPERT`" in _command(bot, slack, "experts <@U0EXPERT|expert>", "U0ADMIN", "e3")

        bot.send(mention_event(OFF_TOPIC, channel="C0HELP", ts="1700005200.000100"))
        abstained = _final(bot, "1700005200.000100")
        assert abstained.count("<@U0EXPERT>") == 1 and "Try asking <@U0EXPERT>" in abstained

        bot.send(mention_event(SURE, channel="C0HELP", ts="1700005200.000200"))
        assert "<@U0EXPERT>" not in _final(bot, "1700005200.000200")

        assert "`S0HELPERS`" in _command(bot, slack, "experts <!subteam^S0HELPERS|@helpers>", "U0ADMIN", "e4")
        bot.send(mention_event(OFF_TOPIC, channel="C0HELP", ts="1700005200.000300"))
        assert "Try asking <!subteam^S0HELPERS>" in _final(bot, "1700005200.000300")

        bot.send(mention_event(OFF_TOPIC, channel="C0ELSEWHERE", ts="1700005200.000400"))
        assert "Try asking" not in _final(bot, "1700005200.000400", channel="C0ELSEWHERE")  # per channel

        assert "No experts here" in _command(bot, slack, "experts off", "U0ADMIN", "e5")
        bot.send(mention_event(OFF_TOPIC, channel="C0HELP", ts="1700005200.000500"))
        assert "Try asking" not in _final(bot, "1700005200.000500")


TRAP_DOC = "# Refunds <@U0EXPERT> <!subteam^S0ALL>\n\nRefunds are paid within thirty days <!here>.\n"
# No citation: the model saying the sources don't answer — an abstention carrying the model's text.
TRAP_REPLY = "Ask <@U0EXPERT> or <!subteam^S0ALL|@all> or <!here> about refunds; <@U0BOSS> knows."


def test_document_and_model_text_cannot_produce_a_mention_only_docents_expert_line_can(settings, slack,
                                                                                          monkeypatch):
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(reply=TRAP_REPLY))
    related = Source(n=1, doc_id="d1", title="Refunds <@U0EXPERT> <!subteam^S0ALL>", source="refunds.md", page=None,
                     section="Refunds <!here>", snippet="…")
    real_ask = docent.ask

    def ask_with_related(q, **kwargs):  # the core attaches these to abstentions; stand in for it here
        answer = real_ask(q, **kwargs)
        return dataclasses.replace(answer, related=(related,)) if answer.outcome is Outcome.abstained else answer

    monkeypatch.setattr(docent, "ask", ask_with_related)
    file = slack.add_file(FakeFile("F0REF", "refunds.md", TRAP_DOC.encode(), mimetype="text/markdown"))
    try:
        docent.admin.set_experts(Actor("slack", TEAM_ID, "U0ADMIN", True), "C0HELP", "U0EXPERT")
        with serve(docent, settings, slack) as bot:
            bot.send(mention_event("learn", user="U0ADMIN", channel="C0HELP", ts="1700005300.000100", files=[file]))
            bot.settle()
            bot.send(mention_event("How fast are refunds paid?", channel="C0HELP", ts="1700005300.000500"))
            final = bot.answer_for("1700005300.000500", channel="C0HELP")
            bot.settle()
    finally:
        docent.close()
    blocks_ = final["blocks"]
    assert "&lt;@U0BOSS&gt;" in json.dumps(blocks_)  # the model's text, shown as text
    (related_block,) = [b for b in blocks_ if b.get("block_id") == "docent_related"]
    assert "Related" in related_block["elements"][0]["text"] and "*Sources*" not in json.dumps(blocks_)
    assert "[1] Refunds &lt;@U0EXPERT&gt;" in related_block["elements"][1]["text"]
    # Across everything docent sent about this question, the only mention is its expert line.
    sent = json.dumps([c.params for c in slack.calls() if c.method.startswith("chat.")
                       and c.params.get("channel") in ("C0HELP", None)
                       and (c.params.get("thread_ts") == "1700005300.000500" or c.params.get("ts") == final["ts"])])
    assert re.findall(r"<[@!#][^>]*>", sent) == ["<@U0EXPERT>"]


def test_expert_references_are_one_person_or_one_group():
    assert parse_expert("<@U0EXPERT|expert>") == "U0EXPERT"
    assert parse_expert("<!subteam^S0HELP|@help>") == "S0HELP"
    assert parse_expert("W0GRIDUSER") == "W0GRIDUSER"
    for bad in ("<@U0A> <@U0B>", "everyone", "<!here>", "<#C0CHAN|general>", "U0A <!subteam^S0B>"):
        assert parse_expert(bad) is None, bad
