"""Posting to Slack: thread replies, in-place updates, ephemeral notes — failures logged, never raised."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from connectors.slack import blocks

log = logging.getLogger(__name__)

SORRY_SLACK = "Sorry — I couldn't post my answer in Slack just now. Please try again in a minute."
PROGRESS_TIMEOUT_S = 5  # a progress edit slower than this is worth nothing
PROGRESS_MAX_INTERVAL_S = 30.0


def reason_of(err: Exception) -> str:
    """A loggable reason without request details (never the token)."""
    if isinstance(err, SlackApiError):
        return str(err.response.get("error"))
    return type(err).__name__


def without_retries(client: WebClient, *, timeout_s: int = PROGRESS_TIMEOUT_S) -> WebClient:
    """The same Slack client without retry handlers: for calls that should fail fast on a 429
    rather than wait out Retry-After (progress edits)."""
    return WebClient(
        token=client.token, base_url=client.base_url, timeout=min(client.timeout, timeout_s), ssl=client.ssl,
        proxy=client.proxy, headers=dict(client.headers), team_id=client.default_params.get("team_id"),
        retry_handlers=[],
    )


def _retry_after_s(err: SlackApiError) -> float | None:
    """Retry-After of a 429, else None."""
    response = err.response
    if getattr(response, "status_code", None) != 429:
        return None
    for key, value in (getattr(response, "headers", None) or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except ValueError:
                break
    return 1.0


class NewestOnly:
    """Sends the newest of a stream of offers without ever holding the offerer up.

    Sends leave on a worker thread (the model's stream never waits for Slack), one at a time,
    newest offer only. A 429 drops the send: nothing more is sent before its Retry-After has
    passed, and the pause between sends doubles. `close()` waits for a send already on the wire,
    so whatever the caller sends afterwards is always the last word. Subclasses say what a send
    is (`_send`, raising SlackApiError when Slack refuses).
    """

    def __init__(self, channel: str, executor: Executor, *, clock: Callable[[], float] = time.monotonic):
        self._channel = channel
        self._executor = executor
        self._clock = clock
        self._pending = None
        self._running = False
        self._closed = False
        self._not_before = 0.0
        self._interval = 0.0  # least time between sends once Slack sent a 429 (2 s, 4 s …)
        self._idle = threading.Condition()
        self.sent = 0
        self.dropped = 0

    def _send(self, item) -> None:
        raise NotImplementedError

    def _refused(self, err: Exception) -> None:
        """Slack refused a send for a reason other than a 429 (logged; subclasses may stop)."""
        log.info("progress send failed in %s: %s", self._channel, reason_of(err))

    def offer(self, item) -> None:
        """Send `item` as soon as Slack allows; drop it if Slack asked us to wait."""
        with self._idle:
            if self._closed or self._clock() < self._not_before:
                self.dropped += 1
                return
            self._pending = item
            if self._running:
                return  # the worker picks up the newest offer when its send returns
            self._running = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError:  # the executor is shutting down: no more progress
            with self._idle:
                self._running = False
                self._idle.notify_all()

    def _drain(self) -> None:
        while True:
            with self._idle:
                item, self._pending = self._pending, None
                if item is None or self._closed or self._clock() < self._not_before:
                    self._running = False
                    self._idle.notify_all()
                    return
            self._attempt(item)

    def _attempt(self, item) -> None:
        try:
            self._send(item)
        except SlackApiError as err:
            retry_after = _retry_after_s(err)
            if retry_after is None:
                self._refused(err)
                return
            with self._idle:
                self._interval = min(PROGRESS_MAX_INTERVAL_S, max(2.0, self._interval * 2))
                self._not_before = self._clock() + max(retry_after, self._interval)
                self._pending = None
                self.dropped += 1
            log.info("progress in %s paused %.0f s after a 429", self._channel, retry_after)
            return
        except Exception as err:
            self._refused(err)
            return
        with self._idle:
            self.sent += 1
            if self._interval:
                self._not_before = max(self._not_before, self._clock() + self._interval)

    def wait_idle(self, timeout_s: float = PROGRESS_TIMEOUT_S + 1) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout_s)

    def close(self, timeout_s: float = PROGRESS_TIMEOUT_S + 1) -> None:
        """No more sends; returns once a send under way has finished (or timed out)."""
        with self._idle:
            self._closed = True
            self._pending = None
        self.wait_idle(timeout_s)


class ProgressEdits(NewestOnly):
    """A streaming answer shown in its placeholder (chat.update), through a client without
    retries, newest text only (see `NewestOnly`). The final answer — sent afterwards through the
    retrying client — is always the last word in the message."""

    def __init__(self, client: WebClient, channel: str, ts: str, executor: Executor, *,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(channel, executor, clock=clock)
        self._client = client
        self._ts = ts

    def _send(self, message: blocks.SlackMessage) -> None:
        self._client.chat_update(channel=self._channel, ts=self._ts, **message.as_kwargs())


class SlackReplies:
    """Every call here swallows Slack/network failures after logging them: a reply that can't be
    posted must not crash the listener (the caller decides whether to tell the user)."""

    def __init__(self, client: WebClient):
        self.client = client

    def post_or_raise(self, channel: str, thread_ts: str | None, message: blocks.SlackMessage) -> str:
        # No previews: a document's or the model's URL must not fetch or show anything.
        kwargs = {**message.as_kwargs(), "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        return self.client.chat_postMessage(channel=channel, **kwargs)["ts"]

    def update_or_raise(self, channel: str, ts: str, message: blocks.SlackMessage) -> None:
        self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())

    def post(self, channel: str, thread_ts: str | None, message: blocks.SlackMessage) -> str | None:
        try:
            return self.post_or_raise(channel, thread_ts, message)
        except Exception as err:
            log.error("chat.postMessage failed in %s: %s", channel, reason_of(err))
            return None

    def update(self, channel: str, ts: str, message: blocks.SlackMessage) -> bool:
        try:
            self.update_or_raise(channel, ts, message)
            return True
        except Exception as err:
            log.error("chat.update failed in %s: %s", channel, reason_of(err))
            return False

    def replace_or_post(self, channel: str, thread_ts: str | None, ts: str | None, message: blocks.SlackMessage) -> None:
        """Put `message` where the placeholder was; else post it; else post a short apology."""
        if ts and self.update(channel, ts, message):
            return
        if self.post(channel, thread_ts, message) is None and message.text != SORRY_SLACK:
            self.post(channel, thread_ts, blocks.notice(SORRY_SLACK))

    def ephemeral(self, body: dict, channel: str, user: str, text: str, *, mrkdwn: bool = False) -> None:
        """Only the person who asked sees it: via the payload's response_url, else chat.postEphemeral."""
        self.ephemeral_message(body, channel, user, blocks.mrkdwn_notice(text) if mrkdwn else blocks.notice(text))

    def ephemeral_message(self, body: dict, channel: str, user: str, message: blocks.SlackMessage, *,
                          replace_original: bool = False) -> Exception | None:
        """`message` for the person who acted only; None when shown, else the last refusal."""
        response_url = body.get("response_url")
        if response_url:
            try:
                response = WebhookClient(response_url).send(
                    text=message.text, blocks=list(message.blocks), response_type="ephemeral",
                    replace_original=replace_original, unfurl_links=False, unfurl_media=False,
                )
                if response.status_code == 200:
                    return None
                log.warning("response_url post failed with HTTP %s: %s", response.status_code, response.body[:200])
            except Exception as err:  # fall back to the Web API below
                log.warning("response_url post failed: %s", reason_of(err))
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
            return None
        except Exception as err:
            log.error("chat.postEphemeral failed in %s: %s", channel, reason_of(err))
            return err
