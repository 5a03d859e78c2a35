"""Slack's AI-app surface — native streaming, `markdown` answers, feedback buttons — against a fake
Web API that accepts it (`agent_features=True`), and each fallback when Slack refuses a piece:
the real Bolt app over signed HTTP, the real `Docent` (hash embedder, `FakeChatModel`)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import pytest
from sqlmodel import select

from admin.types import Actor
from bot.core import Docent
from connectors.slack import blocks
from connectors.slack.markdown import slack_markdown
from connectors.slack.stream import AppendBudget
from knowledge.types import Scope
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.slack_api import (
    TEAM_ID,
    FakeFile,
    FakeSlackApi,
    block_action,
    block_problems,
    interaction_fields,
    mention_event,
    post_form,
    serve,
)

HANDBOOK = (
    "# Leave policy\n\n"
    "Every employee receives twenty-five vacation days per calendar year. "
    "Unused vacation days carry over until March 31 of the following year.\n"
)
REPLY = ("Every employee receives **twenty-five** vacation days per calendar year [1], and unused days "
         "carry over until March 31 of the following year [1].")
QUESTION = "How many vacation days does every employee receive per year?"


@pytest.fixture
def slack():
    with FakeSlackApi(agent_features=True) as fake:
        fake.add_user("U0ASKER")
        fake.add_user("U0ADMIN", admin=True)
        yield fake


def _docent(settings, reply: str = REPLY, pause_s: float = 0.12) -> Docent:
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(reply=reply, pause_s=pause_s))
    docent.admin.upload(Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True), "handbook.md", HANDBOOK.encode(),
                        Scope(TEAM_ID, "C0GENERAL"))
    return docent


def _streamed_text(slack, ts: str) -> str:
    """Everything the stream with message `ts` was sent, in order."""
    text = ""
    for call in slack.calls():
        if call.ok and call.method in ("chat.startStream", "chat.appendStream", "chat.stopStream") and (
                call.method == "chat.startStream" or call.params.get("ts") == ts):
            text += call.params.get("markdown_text") or ""
            text += "".join(c.get("text", "") for c in call.params.get("chunks") or [] if c["type"] == "markdown_text")
    return text


def _docent_messages(slack, channel: str, thread_ts: str) -> list[dict]:
    return [m for m in slack.thread_messages(channel, thread_ts) if m.get("bot_id")]


# --- native streaming ------------------------------------------------------------------------------
def test_answer_streams_natively_in_batches_and_stops_with_sources_and_feedback_buttons(settings, slack):
    docent = _docent(settings)
    try:
        with serve(docent, settings, slack) as bot:
            _, body, _ = bot.send(mention_event(QUESTION, ts="1700003000.000100"))
            final = bot.answer_for("1700003000.000100")
            bot.settle()
    finally:
        docent.close()
    (start,) = slack.calls("chat.startStream")
    assert start.params == {"channel": "C0GENERAL", "thread_ts": "1700003000.000100", "recipient_team_id": TEAM_ID,
                            "recipient_user_id": "U0ASKER", "chunks": []}
    ts = final["ts"]
    appends = [c for c in slack.calls("chat.appendStream") if c.params["ts"] == ts]
    assert appends, "the answer grew while the model wrote"
    assert all(b.at - a.at >= 0.9 for a, b in zip(appends, appends[1:]))  # ≤ 1 append a second
    (stop,) = slack.calls("chat.stopStream")
    # Everything streamed, in order, is exactly the answer — nothing lost, nothing twice.
    assert _streamed_text(slack, ts) == slack_markdown(REPLY)
    stop_blocks = stop.params["blocks"]
    assert [b["type"] for b in stop_blocks] == ["section", "context_actions"]
    assert "*Sources*\n[1] Leave policy" in stop_blocks[0]["text"]["text"]
    buttons = stop_blocks[1]["elements"][0]
    assert buttons["type"] == "feedback_buttons" and buttons["action_id"] == blocks.FEEDBACK_BUTTONS
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
        f"up:{body['event_id']}", f"down:{body['event_id']}")
    # No placeholder, no edits: the stream is the message.
    assert slack.calls("chat.postMessage") == [] and slack.calls("chat.update") == []
    assert len(_docent_messages(slack, "C0GENERAL", "1700003000.000100")) == 1


def test_stream_refused_falls_back_to_placeholder_edits_and_the_workspace_remembers(settings, slack):
    slack.refuse("chat.startStream", "not_allowed_token_type", team=TEAM_ID)
    docent = _docent(settings)
    try:
        with serve(docent, settings, slack) as bot:
            bot.send(mention_event(QUESTION, ts="1700003100.000100"))
            first = bot.answer_for("1700003100.000100")
            bot.send(mention_event(QUESTION + " (again)", ts="1700003100.000500"))
            bot.answer_for("1700003100.000500")
            bot.settle()
    finally:
        docent.close()
    assert len(slack.calls("chat.startStream")) == 1  # tried once, then remembered for the workspace
    assert [c.params["text"] for c in slack.calls("chat.postMessage")] == [blocks.PLACEHOLDER_TEXT] * 2
    progress = [c for c in slack.calls("chat.update") if "writing" in json.dumps(c.params["blocks"])]
    assert progress  # today's chat.update path, streaming into the placeholder
    # The answer is the placeholder's last word, once: a markdown block, then sources and 👍/👎.
    assert [b["type"] for b in first["blocks"]] == ["markdown", "section", "context_actions"]
    assert first["blocks"][0]["text"] == slack_markdown(REPLY)
    (message,) = _docent_messages(slack, "C0GENERAL", "1700003100.000100")
    assert message["ts"] == first["ts"] and message["blocks"] == first["blocks"]


def test_a_failed_append_leaves_the_final_answer_to_replace_the_stream_without_duplicates(settings, slack):
    slack.fail("chat.appendStream", error="internal_error", times=1)
    docent = _docent(settings)
    try:
        with serve(docent, settings, slack) as bot:
            bot.send(mention_event(QUESTION, ts="1700003200.000100"))
            bot.settle()
    finally:
        docent.close()
    (stream,) = _docent_messages(slack, "C0GENERAL", "1700003200.000100")
    appends = slack.calls("chat.appendStream")
    assert len(appends) == 1 and not appends[0].ok  # no more appends after the failure
    (stop,) = slack.calls("chat.stopStream")
    assert stop.params == {"channel": "C0GENERAL", "ts": stream["ts"]}  # stopped bare …
    (update,) = slack.calls("chat.update")  # … and replaced by the whole answer
    assert update.params["ts"] == stream["ts"] and update.ok
    assert stream["text"] == slack_markdown(REPLY) and "stream_text" not in stream
    assert [b["type"] for b in stream["blocks"]] == ["markdown", "section", "context_actions"]


def test_appends_stay_within_the_workspace_budget_and_the_stop_carries_the_rest(settings, slack):
    cfg = settings.model_copy(update={"slack_stream_appends_per_minute": 1})
    docent = _docent(cfg, pause_s=0.1)
    try:
        with serve(docent, cfg, slack) as bot:
            bot.send(mention_event(QUESTION, ts="1700003300.000100"))
            final = bot.answer_for("1700003300.000100")
            bot.settle()
    finally:
        docent.close()
    assert len(slack.calls("chat.appendStream")) == 1
    assert _streamed_text(slack, final["ts"]) == slack_markdown(REPLY)


def test_append_budget_is_per_workspace():
    budget = AppendBudget(2)
    assert [budget.take("T1") for _ in range(3)] == [True, True, False]
    assert budget.take("T2") is True


def test_stop_with_refused_feedback_buttons_is_retried_with_plain_buttons(settings, slack):
    slack.unsupport("context_actions", team=TEAM_ID)
    docent = _docent(settings, pause_s=0.0)
    try:
        with serve(docent, settings, slack) as bot:
            _, body, _ = bot.send(mention_event(QUESTION, ts="1700003400.000100"))
            final = bot.answer_for("1700003400.000100")
            bot.settle()
    finally:
        docent.close()
    refused, accepted = slack.calls("chat.stopStream")
    assert not refused.ok and refused.error == "invalid_blocks"
    assert [b["type"] for b in accepted.params["blocks"]] == ["section", "actions"]
    assert {e["action_id"]: e["value"] for e in accepted.params["blocks"][1]["elements"]} == {
        blocks.FEEDBACK_UP: body["event_id"], blocks.FEEDBACK_DOWN: body["event_id"]}
    assert final["text"] == slack_markdown(REPLY)  # the streamed text was not sent twice


# --- markdown answers and their fallback ------------------------------------------------------------
def test_markdown_refused_falls_back_to_mrkdwn_sections_and_is_remembered(settings, slack):
    slack.unsupport("markdown", team=TEAM_ID)
    cfg = settings.model_copy(update={"slack_native_streaming": False})
    docent = _docent(cfg, pause_s=0.0)
    try:
        with serve(docent, cfg, slack) as bot:
            bot.send(mention_event(QUESTION, ts="1700003500.000100"))
            first = bot.answer_for("1700003500.000100")
            bot.send(mention_event(QUESTION + " (again)", ts="1700003500.000500"))
            bot.answer_for("1700003500.000500")
            bot.settle()
    finally:
        docent.close()
    finals = [c for c in slack.calls("chat.update") if "writing" not in json.dumps(c.params["blocks"])]
    refused = [c for c in finals if not c.ok]
    assert len(refused) == 1 and refused[0].error == "invalid_blocks"  # once: then the workspace is known
    assert refused[0].params["blocks"][0]["type"] == "markdown"
    assert [b["type"] for b in first["blocks"]] == ["section", "section", "context_actions"]
    assert "*twenty-five*" in first["blocks"][0]["text"]["text"]  # **bold** as mrkdwn
    second = [c for c in finals if c.params["ts"] != first["ts"]]
    assert len(second) == 1 and second[0].ok and second[0].params["blocks"][0]["type"] == "section"


# --- feedback buttons -------------------------------------------------------------------------------
def test_feedback_buttons_store_the_latest_click_per_user(settings, slack):
    from admin.models import Feedback

    docent = _docent(settings, pause_s=0.0)
    try:
        with serve(docent, settings, slack) as bot:
            _, body, _ = bot.send(mention_event(QUESTION, ts="1700003600.000100"))
            bot.answer_for("1700003600.000100")
            request_id = body["event_id"]

            def click(value: str, at: float) -> None:
                action = {"type": "feedback_buttons", "action_id": blocks.FEEDBACK_BUTTONS,
                          "block_id": blocks.FEEDBACK_BLOCK_ID, "value": value, "action_ts": f"{at:.6f}"}
                assert post_form(bot.url, interaction_fields(block_action(action)))[0] == 200
                bot.settle()

            now = time.time()
            click(f"down:{request_id}", now)
            click(f"up:{request_id}", now - 5)  # an older click processed later must not win
            with docent.db.session() as session:
                rows = session.exec(select(Feedback).where(Feedback.request_id == request_id)).all()
            assert [(r.user, r.helpful) for r in rows] == [("U0ASKER", False)]
            click(f"up:{request_id}", now + 5)
            with docent.db.session() as session:
                (row,) = session.exec(select(Feedback).where(Feedback.request_id == request_id)).all()
            assert row.helpful is True
            assert row.ts.replace(tzinfo=row.ts.tzinfo or timezone.utc) == datetime.fromtimestamp(
                round(now + 5, 6), tz=timezone.utc)
    finally:
        docent.close()


# --- no links or mentions from document or model text on the native surface -------------------------
TRAP_DOC = (
    "# Pricing https://evil.example/pwn?x=1 <!channel> @here\n\n"
    "## Refunds www.evil.com/steal <@U0BOSS> <!subteam^S0ALL>\n\n"
    "Refunds are paid within thirty days of the request.\n"
)
TRAP_REPLY = ("<!here> Refunds are paid within thirty days [1]. Tell <@U0BOSS>, <!subteam^S0ALL|@all> and "
              "<#C0SECRET> @channel, see <https://evil.example/x> and [this](https://evil.example/y).")


def test_native_surface_posts_no_links_or_mentions_from_document_or_model_text(settings, slack):
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(reply=TRAP_REPLY, pause_s=0.05))
    file = slack.add_file(FakeFile("F0TRAP", "pricing.md", TRAP_DOC.encode(), mimetype="text/markdown"))
    try:
        with serve(docent, settings, slack) as bot:
            bot.send(mention_event("learn", user="U0ADMIN", channel="C0DOCS", ts="1700003700.000100", files=[file]))
            bot.settle()
            bot.send(mention_event("How fast are refunds paid?", channel="C0DOCS", ts="1700003700.000500"))
            final = bot.answer_for("1700003700.000500", channel="C0DOCS")
            bot.settle()
    finally:
        docent.close()
    message = slack.message("C0DOCS", final["ts"])
    shown = message["text"] + json.dumps(message["blocks"])
    assert "thirty days [1]" in shown
    assert "&lt;@U0BOSS&gt;" in shown and "&lt;!here&gt;" in shown  # shown as text, never a mention
    assert "evil.example/x" not in shown and "evil.example/y" not in shown  # the output check took them out
    assert "`https://evil.example/pwn?x=1`" in shown  # the document's own URL: shown as code in its title
    # Nothing docent sent on the way — stream chunks, blocks, edits — could mention or link either.
    sent: list[str] = []
    for call in slack.calls():
        if call.method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            sent += [c.get("text", "") for c in call.params.get("chunks") or []]
        for block in call.params.get("blocks") or []:
            if block["type"] == "markdown":
                sent.append(block["text"])
            else:
                sent += [o["text"] for o in [block.get("text"), *block.get("elements", [])]
                         if isinstance(o, dict) and isinstance(o.get("text"), str)]
    own = ("<#C0DOCS>", "<@U0ADMIN>", "<https://example.slack.com/files/F0TRAP|")
    for text in sent:
        for ref in own:
            text = text.replace(ref, "")
        assert not re.search(r"<[!@#]", text), text
        assert "evil.example/x" not in text and "evil.example/y" not in text, text


def test_every_native_message_passes_slacks_block_checks(settings, slack):
    docent = _docent(settings, reply=REPLY + "\n\n```\n" + "\n".join(f"row {i} <tag>" for i in range(40)) + "\n```",
                     pause_s=0.01)
    try:
        with serve(docent, settings, slack) as bot:
            bot.send(mention_event(QUESTION, ts="1700003800.000100"))
            bot.answer_for("1700003800.000100")
            bot.settle()
    finally:
        docent.close()
    assert all(c.ok for c in slack.calls()), [(c.method, c.error) for c in slack.calls() if not c.ok]
    assert block_problems(slack.calls("chat.stopStream")[0].params["blocks"]) == []
