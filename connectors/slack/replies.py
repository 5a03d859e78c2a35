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


class ProgressEdits:
    """A streaming answer shown in its placeholder without ever holding the answer up.

    Edits leave on a worker thread (the model's stream never waits for Slack), through a client
    without retries, newest text only. A 429 drops the edit: nothing more is sent before its
    Retry-After has passed, and the pause between edits doubles. `close()` waits for an edit
    already on the wire, so the final answer — sent afterwards through the retrying client — is
    always the last word in the message.
    """

    def __init__(self, client: WebClient, channel: str, ts: str, executor: Executor, *,
                 clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._channel = channel
        self._ts = ts
        self._executor = executor
        self._clock = clock
        self._pending: blocks.SlackMessage | None = None
        self._running = False
        self._closed = False
        self._not_before = 0.0
        self._interval = 0.0  # least time between edits once Slack sent a 429 (2 s, 4 s …)
        self._idle = threading.Condition()
        self.sent = 0
        self.dropped = 0

    def offer(self, message: blocks.SlackMessage) -> None:
        """Show `message` as soon as Slack allows; drop it if Slack asked us to wait."""
        with self._idle:
            if self._closed or self._clock() < self._not_before:
                self.dropped += 1
                return
            self._pending = message
            if self._running:
                return  # the worker picks up the newest text when its edit returns
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
                message, self._pending = self._pending, None
                if message is None or self._closed or self._clock() < self._not_before:
                    self._running = False
                    self._idle.notify_all()
                    return
            self._edit(message)

    def _edit(self, message: blocks.SlackMessage) -> None:
        try:
            self._client.chat_update(channel=self._channel, ts=self._ts, **message.as_kwargs())
        except SlackApiError as err:
            retry_after = _retry_after_s(err)
            if retry_after is None:
                log.info("progress edit failed in %s: %s", self._channel, reason_of(err))
                return
            with self._idle:
                self._interval = min(PROGRESS_MAX_INTERVAL_S, max(2.0, self._interval * 2))
                self._not_before = self._clock() + max(retry_after, self._interval)
                self._pending = None
                self.dropped += 1
            log.info("progress edits in %s paused %.0f s after a 429", self._channel, retry_after)
            return
        except Exception as err:
            log.info("progress edit failed in %s: %s", self._channel, reason_of(err))
            return
        with self._idle:
            self.sent += 1
            if self._interval:
                self._not_before = max(self._not_before, self._clock() + self._interval)

    def wait_idle(self, timeout_s: float = PROGRESS_TIMEOUT_S + 1) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout_s)

    def close(self, timeout_s: float = PROGRESS_TIMEOUT_S + 1) -> None:
        """No more edits; returns once an edit under way has finished (or timed out)."""
        with self._idle:
            self._closed = True
            self._pending = None
        self.wait_idle(timeout_s)


class SlackReplies:
    """Every call here swallows Slack/network failures after logging them: a reply that can't be
    posted must not crash the listener (the caller decides whether to tell the user)."""

    def __init__(self, client: WebClient):
        self.client = client

    def post(self, channel: str, thread_ts: str | None, message: blocks.SlackMessage) -> str | None:
        try:
            # No previews: a document's or the model's URL must not fetch or show anything.
            kwargs = {**message.as_kwargs(), "unfurl_links": False, "unfurl_media": False}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            return self.client.chat_postMessage(channel=channel, **kwargs)["ts"]
        except Exception as err:
            log.error("chat.postMessage failed in %s: %s", channel, reason_of(err))
            return None

    def update(self, channel: str, ts: str, message: blocks.SlackMessage) -> bool:
        try:
            self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
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
        message = blocks.mrkdwn_notice(text) if mrkdwn else blocks.notice(text)
        response_url = body.get("response_url")
        if response_url:
            try:
                response = WebhookClient(response_url).send(
                    text=message.text, blocks=list(message.blocks), response_type="ephemeral", replace_original=False,
                    unfurl_links=False, unfurl_media=False,
                )
                if response.status_code == 200:
                    return
                log.warning("response_url post failed with HTTP %s", response.status_code)
            except Exception as err:  # fall back to the Web API below
                log.warning("response_url post failed: %s", reason_of(err))
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())
        except Exception as err:
            log.error("chat.postEphemeral failed in %s: %s", channel, reason_of(err))
