"""Slack over Socket Mode: docent's bridge on slack_sdk's aiohttp client, over a real loopback
websocket (tests/fakes/slack_socket_mode.py), with the real Bolt app and `Docent`."""

from __future__ import annotations

import json
import resource
import time

import pytest

from admin.types import Actor
from bot.core import Docent
from bot.metrics import RECONNECTS
from connectors.slack.admin_commands import HELP
from knowledge.types import Scope
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi, command_fields, event_body, mention_event
from tests.fakes.slack_socket_mode import FakeSocketMode, serve_socket_mode

HANDBOOK = (
    "# Leave policy\n\nEvery employee receives twenty-five vacation days per calendar year. "
    "Unused vacation days carry over until March 31 of the following year.\n"
)
QUESTION = "How many vacation days does every employee receive per year?"


@pytest.fixture
def sm():
    with FakeSocketMode(refresh_close_after_s=1.0) as fake:
        yield fake


@pytest.fixture
def slack(sm):
    with FakeSlackApi(socket_mode=sm) as fake:
        fake.add_user("U0ASKER")
        yield fake


@pytest.fixture
def docent(settings):
    d = Docent.from_settings(settings)
    d.admin.upload(Actor("slack", TEAM_ID, "U0ADMIN", is_platform_admin=True), "handbook.md", HANDBOOK.encode(),
                   Scope(TEAM_ID, "C0GENERAL"))
    yield d
    d.close()


@pytest.fixture
def bot(docent, settings, slack, sm):
    with serve_socket_mode(docent, settings, slack, sm) as harness:
        yield harness


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _eventually(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def _answer_text(params: dict) -> str:
    return json.dumps(params.get("blocks"))


def test_mention_is_acked_at_once_and_answered_in_its_thread(bot, sm):
    envelope = sm.send_event(event_body(mention_event(QUESTION, ts="1700000100.000100")))
    assert sm.ack_latency_s(envelope) < 1.0
    answer = bot.answers.answer_for("1700000100.000100")
    assert "twenty-five" in _answer_text(answer) and "Sources" in _answer_text(answer)


def test_event_types_docent_does_not_handle_are_acked_too(bot, sm):
    # Bolt answers 404 for these; an unacked envelope would be redelivered by Slack forever.
    for event in ({"type": "assistant_thread_started", "assistant_thread": {"channel_id": "D1"}},
                  {"type": "reaction_added", "user": "U0ASKER", "reaction": "eyes", "item": {}}):
        envelope = sm.send_event(event_body(event))
        assert sm.wait_ack(envelope, 5).payload is None


def test_slash_command_help_comes_back_in_the_ack(bot, sm):
    envelope = sm.send_command(command_fields("help"))
    assert sm.wait_ack(envelope, 5).payload == {"text": HELP}


def test_redelivered_envelope_is_acked_but_not_answered_again(bot, sm, slack):
    body = event_body(mention_event(QUESTION, ts="1700000200.000100"))
    first = sm.send_event(body)
    sm.wait_ack(first)
    bot.answers.answer_for("1700000200.000100")
    again = sm.send_event(body, retry_attempt=1)  # Slack's redelivery: a new envelope, the same event
    sm.wait_ack(again)
    bot.settle()
    assert len(slack.thread_messages("C0GENERAL", "1700000200.000100")) == 1


def test_bare_tcp_close_is_noticed_and_replaced_within_15_s_without_a_busy_loop(bot, sm):
    reconnects = RECONNECTS.labels("slack")._value.get()
    started, cpu = time.monotonic(), _cpu_s()
    sm.drop_current()  # no close frame: a proxy or NAT idle timeout
    sm.wait_connections(2, timeout_s=15)
    took, spent = time.monotonic() - started, _cpu_s() - cpu
    assert took < 15 and spent < 2.0, (took, spent)
    _eventually(lambda: RECONNECTS.labels("slack")._value.get() == reconnects + 1 and bot.bridge.connected())
    envelope = sm.send_event(event_body(mention_event(QUESTION, ts="1700000300.000100")))
    assert sm.ack_latency_s(envelope) < 1.0


def test_after_a_refresh_the_next_envelope_is_acked_within_a_second(bot, sm):
    sm.request_refresh()
    sm.wait_connections(2, timeout_s=10)
    envelope = sm.send_event(event_body(mention_event(QUESTION, ts="1700000400.000100")))
    assert sm.wait_ack(envelope).connection == 2
    assert sm.ack_latency_s(envelope) < 1.0
    bot.answers.answer_for("1700000400.000100")


def test_close_frame_is_followed_by_a_new_connection(bot, sm):
    sm.close_current()
    sm.wait_connections(2, timeout_s=10)
    envelope = sm.send_event(event_body(mention_event(QUESTION, ts="1700000500.000100")))
    assert sm.ack_latency_s(envelope) < 1.0
