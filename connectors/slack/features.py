"""Which of Slack's newer features each workspace accepts, learned from Slack's own refusals.

docent tries native streaming, the assistant surface, `markdown` blocks and feedback buttons
first (unless settings turn one off); the first time Slack refuses one in a workspace — a plan
or token that lacks it, a client that doesn't render it, any error — that workspace uses the
classic way (chat.update edits, normal threads, mrkdwn sections, plain buttons) for a while and
then tries again, since plans and apps change. In-process: each replica learns for itself.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from slack_sdk.errors import SlackApiError

from connectors.slack.blocks import RenderStyle

log = logging.getLogger(__name__)

REMEMBER_S = 6 * 3600


class Feature(StrEnum):
    streaming = "streaming"  # chat.startStream / appendStream / stopStream
    assistant = "assistant"  # assistant.threads.setStatus / setTitle / setSuggestedPrompts
    markdown = "markdown"  # `markdown` blocks
    feedback_buttons = "feedback_buttons"  # `feedback_buttons` in `context_actions`


# "[ERROR] unsupported type: markdown [json-pointer:/blocks/0/type]" and the like.
_BLOCK_TYPE = re.compile(r"\b(markdown|context_actions|feedback_buttons)\b")
_BLOCK_FEATURE = {"markdown": Feature.markdown, "context_actions": Feature.feedback_buttons,
                  "feedback_buttons": Feature.feedback_buttons}


def refused_block_features(err: Exception, used: RenderStyle) -> set[Feature]:
    """The newer block kinds an `invalid_blocks` refusal points at. Slack names the offending
    block in `response_metadata.messages`; when it names none of them, every newer kind the
    message used is suspect."""
    if not isinstance(err, SlackApiError) or err.response.get("error") != "invalid_blocks":
        return set()
    messages = (err.response.get("response_metadata") or {}).get("messages") or []
    named = {_BLOCK_FEATURE[m.group(1)] for text in messages for m in _BLOCK_TYPE.finditer(str(text))}
    in_use = {f for f, on in ((Feature.markdown, used.markdown), (Feature.feedback_buttons, used.feedback_buttons))
              if on}
    return (named & in_use) or in_use


class WorkspaceFeatures:
    def __init__(self, settings, *, remember_s: float = REMEMBER_S, clock: Callable[[], float] = time.monotonic):
        self._enabled = {
            Feature.streaming: settings.slack_native_streaming and settings.streaming,
            Feature.assistant: True,
            Feature.markdown: settings.slack_markdown_blocks,
            Feature.feedback_buttons: settings.slack_feedback_buttons,
        }
        self._remember_s = remember_s
        self._clock = clock
        self._refused: dict[tuple[str, Feature], float] = {}
        self._lock = threading.Lock()

    def allowed(self, team: str, feature: Feature) -> bool:
        if not self._enabled[feature]:
            return False
        with self._lock:
            since = self._refused.get((team, feature))
            if since is None:
                return True
            if self._clock() - since >= self._remember_s:
                del self._refused[(team, feature)]  # time to try again
                return True
            return False

    def refuse(self, team: str, feature: Feature, err: Exception | str) -> None:
        reason = err if isinstance(err, str) else (
            str(err.response.get("error")) if isinstance(err, SlackApiError) else type(err).__name__)
        with self._lock:
            first = (team, feature) not in self._refused
            self._refused[(team, feature)] = self._clock()
        if first:
            log.warning("Slack refused %s in workspace %s (%s): using the classic way there", feature, team, reason)

    def style(self, team: str) -> RenderStyle:
        return RenderStyle(markdown=self.allowed(team, Feature.markdown),
                           feedback_buttons=self.allowed(team, Feature.feedback_buttons))
