"""Putting rendered answers into Slack, falling back to the classic blocks when Slack refuses
the newer ones (`invalid_blocks` naming `markdown` or `context_actions`): the workspace is
marked, the refused message downgraded in place (`blocks.downgrade`) and sent again — so a
refusal costs one call, never the answer, and nothing is posted twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from connectors.slack import blocks
from connectors.slack.features import WorkspaceFeatures, refused_block_features
from connectors.slack.replies import SORRY_SLACK, SlackReplies, reason_of

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, features: WorkspaceFeatures) -> None:
        self.features = features

    def learn(self, team: str, err: Exception, message_or_blocks) -> blocks.RenderStyle | None:
        """The style to retry with after `err`, or None when newer blocks weren't the problem."""
        blocks_ = getattr(message_or_blocks, "blocks", message_or_blocks)
        used = blocks.uses_agent_blocks(blocks.SlackMessage("", tuple(blocks_)))
        refused = refused_block_features(err, used)
        if not refused:
            return None
        for feature in refused:
            self.features.refuse(team, feature, err)
        return self.features.style(team)

    def _send(self, replies: SlackReplies, team: str, channel: str, thread_ts: str | None, ts: str | None,
              message: blocks.SlackMessage) -> str | None:
        """Update `ts` (or post when None) with `message`; the ts, or None when Slack refused."""
        for attempt in (1, 2):
            try:
                if ts:
                    replies.update_or_raise(channel, ts, message)
                    return ts
                return replies.post_or_raise(channel, thread_ts, message)
            except Exception as err:
                style = self.learn(team, err, message) if attempt == 1 else None
                if style is None:
                    log.error("%s failed in %s: %s", "chat.update" if ts else "chat.postMessage", channel,
                              reason_of(err))
                    return None
                message = blocks.downgraded_message(message, style)
        return None

    def deliver(self, replies: SlackReplies, team: str, channel: str, thread_ts: str | None, ts: str | None,
                messages: Sequence[blocks.SlackMessage]) -> bool:
        """The first message where the placeholder (or stream) `ts` was — posted if it can't be
        replaced — the rest after it; a short apology when the first can't be posted at all."""
        first, *more = messages
        done = bool(ts) and self._send(replies, team, channel, thread_ts, ts, first) is not None
        if not done:
            done = self._send(replies, team, channel, thread_ts, None, first) is not None
        if not done:
            if first.text != SORRY_SLACK:
                replies.post(channel, thread_ts, blocks.notice(SORRY_SLACK))
            return False
        for message in more:
            self._send(replies, team, channel, thread_ts, None, message)
        return True

    def ephemeral(self, replies: SlackReplies, team: str, body: dict, channel: str, user: str,
                  message: blocks.SlackMessage, *, replace_original: bool = False) -> bool:
        """An ephemeral message, downgraded and shown again when Slack refused its newer blocks."""
        err = replies.ephemeral_message(body, channel, user, message, replace_original=replace_original)
        if err is None:
            return True
        style = self.learn(team, err, message)
        if style is None:
            return False
        return replies.ephemeral_message(body, channel, user, blocks.downgraded_message(message, style),
                                         replace_original=replace_original) is None
