"""The agent / assistant surface (slack_bolt's `Assistant`): suggested prompts from the documents
where the user is, a title and a "Searching N documents…" status per question, answers from the
viewed channel's documents — and an ordinary DM thread when Slack has no such surface."""

from __future__ import annotations

import pytest

from admin.types import Actor
from bot.core import Docent
from connectors.slack import blocks
from knowledge.types import Scope
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.slack_api import (
    TEAM_ID,
    FakeSlackApi,
    assistant_thread_started,
    message_event,
    serve,
)

LEAVE = "# Leave policy\n\nEvery employee receives twenty-five vacation days per calendar year.\n"
TRAVEL = "# Travel policy\n\nTrain travel is first class for trips longer than four hours.\n"
HANGAR = "# Zeppelin hangar\n\nThe zeppelin hangar door code is 4711.\n"
DM, THREAD = "D0ASSIST", "1700009000.000100"


def _docent(settings) -> Docent:
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(
        reply="Every employee receives twenty-five vacation days per calendar year [1]."))
    admin = Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True)
    docent.admin.upload(admin, "leave.md", LEAVE.encode(), Scope(TEAM_ID, "C0GENERAL"))
    docent.admin.upload(admin, "travel.md", TRAVEL.encode(), Scope.workspace_wide(TEAM_ID))
    docent.admin.upload(admin, "hangar.md", HANGAR.encode(), Scope(TEAM_ID, "C0HANGAR"))
    return docent


@pytest.fixture
def docent(settings):
    d = _docent(settings)
    yield d
    d.close()


def _ask_in_thread(bot, slack, text: str, ts: str) -> None:
    slack.add_message(DM, user="U0ASKER", text=text, ts=ts, thread_ts=THREAD)
    bot.send(message_event(text, channel=DM, channel_type="im", ts=ts, thread_ts=THREAD))


def test_assistant_thread_gets_prompts_title_status_and_answers_from_the_viewed_channel(docent, settings):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        bot.send(assistant_thread_started(dm=DM, thread_ts=THREAD, viewing="C0GENERAL"))
        bot.settle()
        (prompts,) = slack.calls("assistant.threads.setSuggestedPrompts")
        assert prompts.params == {
            "channel_id": DM, "thread_ts": THREAD, "title": "Ask about your documents", "team_id": TEAM_ID,
            "prompts": [  # the viewed channel's document and the workspace-wide one, never C0HANGAR's
                {"title": "About Leave policy", "message": "What are the key points of “Leave policy”?"},
                {"title": "About Travel policy", "message": "What are the key points of “Travel policy”?"},
                {"title": "What can you answer?", "message": "Which documents can you answer questions from?"},
            ],
        }

        _ask_in_thread(bot, slack, "How many vacation days does every employee receive?", "1700009000.000200")
        answer = bot.answer_for(THREAD, channel=DM)
        bot.settle()
        (title,) = slack.calls("assistant.threads.setTitle")
        assert title.params == {"channel_id": DM, "thread_ts": THREAD, "team_id": TEAM_ID,
                                "title": "How many vacation days does every employee receive?"}
        (status,) = slack.calls("assistant.threads.setStatus")
        assert status.params == {"channel_id": DM, "thread_ts": THREAD, "team_id": TEAM_ID,
                                 "status": "Searching 2 documents…"}
        (start,) = slack.calls("chat.startStream")
        assert start.params["channel"] == DM and start.params["thread_ts"] == THREAD
        methods = [c.method for c in slack.calls()]
        assert methods.index("assistant.threads.setTitle") < methods.index("assistant.threads.setStatus") \
            < methods.index("chat.startStream")
        assert "twenty-five" in answer["text"]
        assert "Leave policy" in str(answer["blocks"])  # answered from C0GENERAL's document

        _ask_in_thread(bot, slack, "And do unused days carry over?", "1700009000.000400")
        bot.settle()
        assert len(slack.calls("assistant.threads.setTitle")) == 1  # the title is the first question's
        assert len(slack.calls("assistant.threads.setStatus")) == 2


def test_without_an_assistant_surface_the_thread_is_an_ordinary_dm_thread(docent, settings):
    with FakeSlackApi() as slack, serve(docent, settings, slack) as bot:  # the classic surface
        bot.send(assistant_thread_started(dm=DM, thread_ts=THREAD, viewing="C0GENERAL"))
        bot.settle()
        (refused,) = slack.calls("assistant.threads.setSuggestedPrompts")
        assert not refused.ok
        (greeting,) = slack.calls("chat.postMessage")  # the same suggestions as a plain greeting
        assert greeting.params["thread_ts"] == THREAD and "What are the key points of “Leave policy”?" in \
            greeting.params["text"]

        _ask_in_thread(bot, slack, "How many vacation days does every employee receive?", "1700009000.000200")
        answer = bot.answer_for(THREAD, channel=DM)
        bot.settle()
        # Marked for the workspace: no title or status calls, no stream; the answer still comes.
        assert slack.calls("assistant.threads.setTitle") == [] and slack.calls("assistant.threads.setStatus") == []
        posts = [c.params for c in slack.calls("chat.postMessage")]
        assert posts[-1]["text"] == blocks.PLACEHOLDER_TEXT and posts[-1]["thread_ts"] == THREAD
        assert "twenty-five" in str(answer["blocks"]) and "Leave policy" in str(answer["blocks"])


def test_status_refused_mid_thread_still_answers_and_is_not_tried_again(docent, settings):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        slack.refuse("assistant.threads.setTitle", "missing_scope", team=TEAM_ID)
        bot.send(assistant_thread_started(dm=DM, thread_ts=THREAD, viewing=None))
        _ask_in_thread(bot, slack, "Which class is train travel for long trips?", "1700009000.000200")
        first = bot.answer_for(THREAD, channel=DM)
        _ask_in_thread(bot, slack, "And for short trips?", "1700009000.000400")
        bot.settle()
    assert len(slack.calls("assistant.threads.setTitle")) == 1  # refused once …
    assert slack.calls("assistant.threads.setStatus") == []  # … and the surface is off for the workspace
    assert "Travel policy" in str(first["blocks"])  # viewing nothing: workspace-wide documents
    assert len([m for m in slack.thread_messages(DM, THREAD) if m.get("bot_id")]) == 2


def test_an_ordinary_dm_thread_reply_is_answered_without_touching_the_assistant_surface(docent, settings):
    with FakeSlackApi(agent_features=True) as slack, serve(docent, settings, slack) as bot:
        thread = "1700009500.000100"  # a DM thread Slack never opened as an assistant thread
        slack.add_message(DM, user="U0ASKER", text="How many vacation days do I get?", ts="1700009500.000200",
                          thread_ts=thread)
        bot.send(message_event("How many vacation days do I get?", channel=DM, channel_type="im",
                               ts="1700009500.000200", thread_ts=thread))
        answer = bot.answer_for(thread, channel=DM)
        bot.settle()
    assert [c for c in slack.calls() if c.method.startswith("assistant.")] == []
    assert "Leave policy" not in str(answer["blocks"])  # a DM's scope: workspace-wide documents only
