"""Private answers (`/docent ask` with "Share in channel") and the message shortcut "Ask docent
about this", through the real Bolt app over signed HTTP against the fake Web API."""

from __future__ import annotations

import json

import pytest

from admin.types import Actor
from bot.core import Docent
from connectors.slack import blocks
from connectors.slack.app import ASK_DOCENT
from knowledge.types import Scope
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.slack_api import (
    TEAM_ID,
    FakeSlackApi,
    block_action,
    command_fields,
    interaction_fields,
    message_shortcut,
    post_form,
    serve,
)

HANDBOOK = "# Leave policy\n\nEvery employee receives twenty-five vacation days per calendar year.\n"
REPLY = "Every employee receives **twenty-five** vacation days per calendar year [1]."
QUESTION = "How many vacation days does every employee receive per year?"


@pytest.fixture
def model():
    return FakeChatModel(reply=REPLY)


@pytest.fixture
def docent(settings, model):
    d = Docent.from_settings(settings, chat_model=model)
    d.admin.upload(Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True), "handbook.md", HANDBOOK.encode(),
                   Scope(TEAM_ID, "C0GENERAL"))
    yield d
    d.close()


def _share_key(params: dict) -> str:
    (share,) = [b for b in params["blocks"] if b.get("block_id") == blocks.SHARE_BLOCK_ID]
    return share["elements"][0]["value"]


def _click_share(bot, slack, key: str, user: str, rid: str) -> None:
    action = {"type": "button", "action_id": blocks.SHARE, "block_id": blocks.SHARE_BLOCK_ID, "value": key,
              "action_ts": "1700004000.5"}
    payload = block_action(action, user=user, response_url=f"{slack.base_url}/response/{rid}")
    assert post_form(bot.url, interaction_fields(payload))[0] == 200
    bot.settle()


def test_private_answer_is_ephemeral_and_share_reposts_it_without_a_second_model_call(docent, settings, model):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        post_form(bot.url, command_fields(f"ask {QUESTION}", response_url=f"{slack.base_url}/response/ask"))
        bot.settle()
        (private,) = slack.calls("response_url")
        assert private.params["response_type"] == "ephemeral" and private.params["replace_original"] is False
        assert [b["type"] for b in private.params["blocks"]] == ["markdown", "section", "context_actions", "actions"]
        assert slack.calls("chat.postMessage") == []  # nobody else saw anything
        key = _share_key(private.params)

        _click_share(bot, slack, key, "U0SOMEONE", "other")  # not the asker: refused
        assert "Only the person who asked" in slack.calls("response_url")[-1].params["text"]
        assert slack.calls("chat.postMessage") == []

        _click_share(bot, slack, key, "U0ASKER", "share")
        _click_share(bot, slack, key, "U0ASKER", "again")  # a double click shares once
        (shared,) = slack.calls("chat.postMessage")
        assert shared.params["channel"] == "C0GENERAL" and "thread_ts" not in shared.params
        intro, *rest = shared.params["blocks"]
        assert intro["type"] == "context" and QUESTION in intro["elements"][0]["text"]
        # The same answer, sources and 👍/👎 (for the same request), without the share button.
        assert rest == [b for b in private.params["blocks"] if b.get("block_id") != blocks.SHARE_BLOCK_ID]
        assert len(model.calls) == 1
        done = [c.params for c in slack.calls("response_url") if c.params["id"] == "share"]
        assert done == [{**done[0], "text": "Shared in the channel.", "replace_original": True}]

        _click_share(bot, slack, "no-such-key", "U0ASKER", "gone")
        assert "can't be shared any more" in slack.calls("response_url")[-1].params["text"]


def test_refused_markdown_in_a_private_answer_falls_back_to_sections(docent, settings):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        slack.unsupport("markdown")  # response_url posts carry no token: refused for everyone
        post_form(bot.url, command_fields(f"ask {QUESTION}", response_url=f"{slack.base_url}/response/ask"))
        bot.settle()
        refused, accepted = slack.calls("response_url")
        assert not refused.ok and refused.params["blocks"][0]["type"] == "markdown"
        assert not slack.calls("chat.postEphemeral")[0].ok  # the Web API way refused it too
        assert accepted.ok and [b["type"] for b in accepted.params["blocks"]] == [
            "section", "section", "context_actions", "actions"]
        assert "*twenty-five*" in accepted.params["blocks"][0]["text"]["text"]


def test_ask_docent_shortcut_answers_from_the_message_in_its_thread(docent, settings, monkeypatch):
    asked = []
    real_ask = docent.ask
    monkeypatch.setattr(docent, "ask", lambda q, **kw: asked.append(q) or real_ask(q, **kw))
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        message = {"type": "message", "user": "U0BOB", "text": QUESTION, "ts": "1700004100.000300",
                   "thread_ts": "1700004100.000100"}
        payload = message_shortcut(ASK_DOCENT, message, response_url=f"{slack.base_url}/response/sc")
        assert post_form(bot.url, interaction_fields(payload))[0] == 200
        post_form(bot.url, interaction_fields(payload))  # a double click: the same trigger, ignored
        answer = bot.answer_for("1700004100.000100")
        bot.settle()
    (question,) = asked
    assert (question.text, question.user, question.channel, question.thread) == (
        QUESTION, "U0ASKER", "C0GENERAL", "1700004100.000100")
    (start,) = slack.calls("chat.startStream")
    assert start.params["thread_ts"] == "1700004100.000100"  # in the message's own thread
    assert "twenty-five" in answer["text"] and slack.calls("response_url") == []


def test_ask_docent_shortcut_where_docent_cannot_post_says_so_privately(docent, settings):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        slack.refuse("chat.startStream", "not_in_channel", team=TEAM_ID)
        slack.refuse("chat.postMessage", "not_in_channel", team=TEAM_ID)
        message = {"type": "message", "user": "U0BOB", "text": QUESTION, "ts": "1700004200.000100"}
        post_form(bot.url, interaction_fields(message_shortcut(ASK_DOCENT, message, channel="C0PRIVATE",
                                                               response_url=f"{slack.base_url}/response/sc")))
        bot.settle()
        (reply,) = slack.calls("response_url")
        assert "/invite @docent" in reply.params["text"]

        empty = {"type": "message", "user": "U0BOB", "text": "", "ts": "1700004200.000500", "files": [{"id": "F1"}]}
        post_form(bot.url, interaction_fields(message_shortcut(ASK_DOCENT, empty,
                                                               response_url=f"{slack.base_url}/response/e")))
        bot.settle()
        assert "no text to ask about" in slack.calls("response_url")[-1].params["text"]
    assert json.dumps([c.params for c in slack.calls("chat.update")]) == "[]"


@pytest.mark.redis
def test_a_private_answer_stored_by_one_replica_is_shared_by_another(settings, model, redis_url):
    import uuid

    import redis

    prefix = f"docent-test-{uuid.uuid4().hex}"
    cfg = settings.model_copy(update={"redis_url": redis_url, "redis_key_prefix": prefix})
    docent = Docent.from_settings(cfg, chat_model=model)
    client = redis.Redis.from_url(redis_url)
    try:
        docent.admin.upload(Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True), "handbook.md",
                            HANDBOOK.encode(), Scope(TEAM_ID, "C0GENERAL"))
        with FakeSlackApi(agent_features=True) as slack, serve(docent, cfg, slack) as one, \
                serve(docent, cfg, slack) as two:
            post_form(one.url, command_fields(f"ask {QUESTION}", response_url=f"{slack.base_url}/response/ask"))
            one.settle()
            key = _share_key(slack.calls("response_url")[0].params)
            stored = f"{prefix}:slack:share:{key}"
            assert client.exists(stored) and 0 < client.ttl(stored) <= cfg.slack_private_answer_ttl_s
            _click_share(two, slack, key, "U0ASKER", "share")  # the click reaches the other replica
            (shared,) = slack.calls("chat.postMessage")
            assert shared.params["channel"] == "C0GENERAL" and len(model.calls) == 1
            assert not client.exists(stored)  # shared once, then gone
    finally:
        docent.close()
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
