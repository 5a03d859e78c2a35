"""Request bodies over HTTP mode's limit never reach Bolt: the real Bolt app behind the real
WSGI server on loopback, fed raw HTTP (declared, lying and chunked lengths) and signed events."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlencode, urlsplit

import pytest

from bot.core import Docent
from connectors.slack import blocks
from connectors.slack.app import MAX_BODY_BYTES
from tests.connectors.test_slack_app import serve
from tests.fakes.slack_api import FakeSlackApi, command_fields, event_body, mention_event, sign

MB = 1024 * 1024


@pytest.fixture
def slack():
    with FakeSlackApi() as fake:
        fake.add_user("U0ASKER")
        yield fake


@pytest.fixture
def bot(settings, slack, monkeypatch):
    docent = Docent.from_settings(settings)
    with serve(docent, settings, slack) as b:
        b.dispatched = []  # what reached Bolt: the bodies it was asked to dispatch
        real_dispatch = b.app.dispatch

        def spy(request):
            b.dispatched.append(request.raw_body)
            return real_dispatch(request)

        monkeypatch.setattr(b.app, "dispatch", spy)
        yield b
    docent.close()


def _connection(bot) -> tuple[http.client.HTTPConnection, str]:
    url = urlsplit(bot.url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10), url.path


def _post(bot, headers: dict[str, str], body=None, *, chunked: bool = False) -> tuple[int, str, float]:
    conn, path = _connection(bot)
    started = time.monotonic()
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for part in body:
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read().decode(), time.monotonic() - started
    finally:
        conn.close()


def test_a_declared_400_mb_body_gets_413_before_a_byte_of_it_is_sent(bot):
    # Only the headers go out: the server must answer from Content-Length alone.
    status, text, elapsed = _post(bot, {"Content-Type": "application/json", "Content-Length": str(400 * MB)})
    assert status == 413 and "limited to" in text
    assert elapsed < 2
    assert bot.dispatched == []


def test_a_chunked_body_over_the_limit_gets_413_and_never_reaches_bolt(bot):
    block = b"x" * (64 * 1024)
    parts = [block] * (MAX_BODY_BYTES // len(block) + 8)  # ~1.5 MB, no Content-Length
    status, text, _ = _post(bot, {"Content-Type": "application/json"}, parts, chunked=True)
    assert status == 413
    assert bot.dispatched == []


def test_a_content_length_that_lies_low_lets_bolt_see_only_that_many_bytes(bot):
    body = urlencode(command_fields("help")) + "&padding=" + "x" * 50_000
    signed = sign(body)
    status, _, _ = _post(bot, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "40", **signed},
                         body.encode())
    assert status == 401  # the signature covers the whole body; Bolt was given its first 40 bytes
    assert bot.dispatched == [body[:40]]


@pytest.mark.parametrize("body", [b"\xff\xfe\x00\x81", b'{"type": "event_callback", "ev'], ids=["not-utf8", "cut-json"])
def test_a_malformed_body_gets_400_not_a_500_with_a_traceback(bot, body):
    status, text, _ = _post(bot, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)
    assert status == 400 and "request body" in text
    assert bot.dispatched == []


def test_signed_events_still_work_with_a_length_and_chunked(bot, slack):
    sent = []
    for ts, chunked in (("1700002100.000100", False), ("1700002200.000100", True)):
        body = json.dumps(event_body(mention_event("How many vacation days?", ts=ts)))
        headers = {"Content-Type": "application/json", **sign(body)}
        data = body.encode()
        sent.append(body)
        if chunked:
            status, _, _ = _post(bot, headers, [data[:100], data[100:]], chunked=True)
        else:
            status, _, _ = _post(bot, {**headers, "Content-Length": str(len(data))}, data)
        assert status == 200
        # The listener ran: docent posted its placeholder in the event's thread.
        slack.wait_for(lambda calls, ts=ts: [c for c in calls if c.method == "chat.postMessage"
                                             and c.params.get("thread_ts") == ts
                                             and c.params.get("text") == blocks.PLACEHOLDER_TEXT], 30)
    assert bot.dispatched == sent  # Bolt got each body exactly, the chunked one decoded
    bot.settle()
