"""Posting to Slack: thread replies, in-place updates, ephemeral notes — failures logged, never raised."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from connectors.slack import blocks

log = logging.getLogger(__name__)

SORRY_SLACK = "Sorry — I couldn't post my answer in Slack just now. Please try again in a minute."


def reason_of(err: Exception) -> str:
    """A loggable reason without request details (never the token)."""
    if isinstance(err, SlackApiError):
        return str(err.response.get("error"))
    return type(err).__name__


class SlackReplies:
    """Every call here swallows Slack/network failures after logging them: a reply that can't be
    posted must not crash the listener (the caller decides whether to tell the user)."""

    def __init__(self, client: WebClient):
        self.client = client

    def post(self, channel: str, thread_ts: str | None, message: blocks.SlackMessage) -> str | None:
        try:
            kwargs = message.as_kwargs()
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            return self.client.chat_postMessage(channel=channel, **kwargs)["ts"]
        except Exception as err:
            log.error("chat.postMessage failed in %s: %s", channel, reason_of(err))
            return None

    def update(self, channel: str, ts: str, message: blocks.SlackMessage, *, quiet: bool = False) -> bool:
        try:
            self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
            return True
        except Exception as err:
            (log.info if quiet else log.error)("chat.update failed in %s: %s", channel, reason_of(err))
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
                    text=message.text, blocks=list(message.blocks), response_type="ephemeral", replace_original=False
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
