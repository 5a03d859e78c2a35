"""An answer streamed the native way: chat.startStream, chat.appendStream, chat.stopStream.

The stream starts as soon as the question is taken (the message docent is writing appears at
once, like today's placeholder); if Slack refuses it (plan, token type, any error) nothing was
posted, the workspace is marked (`WorkspaceFeatures`) and the caller falls back to the
placeholder + chat.update path — nothing lost, nothing shown twice.

Deltas are batched: appends leave at most once a second per stream (`ProgressThrottle`), each
carrying everything new since the last, and never more than `slack_stream_appends_per_minute`
per workspace (Slack allows about 100 a minute; the budget is the `limits` library's moving
window, shared through Redis when docent has it). An append that doesn't fit the budget is
simply skipped — the next one carries its text. Appends go through a client without retries on a
worker thread (`NewestOnly`): a 429 pauses them, never the answer.

The answer ends with chat.stopStream carrying the rest of the text and the tail blocks
(sources, 👍/👎 …) when what was streamed is the start of the final answer; otherwise — the
output check withheld it, an append failed, the answer outgrew one streamed message — the
stream is stopped and the caller replaces the message with the final answer (chat.update),
exactly as the classic path does with its placeholder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from limits import parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from slack_sdk import WebClient
from slack_sdk.models.messages.chunk import MarkdownTextChunk

from connectors.slack.features import Feature, WorkspaceFeatures
from connectors.slack.markdown import slack_markdown
from connectors.slack.replies import NewestOnly, reason_of

log = logging.getLogger(__name__)

# One streamed message holds 12,000 characters of Markdown; past this the answer is delivered
# as messages instead (the stream is replaced).
STREAM_TEXT_LIMIT = 11_500


class AppendBudget:
    """chat.appendStream calls per workspace per minute, across every stream of the workspace."""

    def __init__(self, per_minute: int, *, redis_url: str | None = None, key_prefix: str = "docent:slack-append"):
        storage: Storage = (
            RedisStorage(redis_url, key_prefix=key_prefix, wrap_exceptions=True, socket_timeout=2)
            if redis_url else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = parse(f"{per_minute}/minute")

    def take(self, team: str) -> bool:
        try:
            return self._limiter.hit(self._item, "slack", team)
        except Exception:  # no budget store: skip appends, the stop still carries everything
            log.warning("stream append budget unavailable", exc_info=True)
            return False


class _Appends(NewestOnly):
    """The worker side of a stream: appends what is new in the newest offered text."""

    def __init__(self, stream: "NativeStream", executor: Executor):
        super().__init__(stream.channel, executor)
        self._stream = stream

    def _send(self, text: str) -> None:
        self._stream._append(text)

    def _refused(self, err: Exception) -> None:
        self._stream._broken(err)


class NativeStream:
    def __init__(self, client: WebClient, quick: WebClient, *, team: str, channel: str, ts: str,
                 features: WorkspaceFeatures, budget: AppendBudget, executor: Executor):
        self.client = client  # stopStream: retried
        self.quick = quick  # appends: never wait out a 429
        self.team = team
        self.channel = channel
        self.ts = ts
        self._features = features
        self._budget = budget
        self._sent = ""  # the escaped Markdown Slack has so far
        self._usable = True  # False once an append failed or the text stopped growing as a prefix
        self._lock = threading.Lock()
        self._appends = _Appends(self, executor)
        self.appended = 0
        self.skipped = 0

    @classmethod
    def start(cls, client: WebClient, quick: WebClient, *, team: str, channel: str, thread_ts: str, user: str,
              features: WorkspaceFeatures, budget: AppendBudget, executor: Executor) -> "NativeStream | None":
        """Start the message (no text yet); None when Slack refuses — the caller falls back."""
        try:
            response = client.chat_startStream(
                channel=channel, thread_ts=thread_ts, recipient_team_id=team, recipient_user_id=user, chunks=[],
            )
        except Exception as err:
            features.refuse(team, Feature.streaming, err)
            return None
        return cls(client, quick, team=team, channel=channel, ts=response["ts"], features=features,
                   budget=budget, executor=executor)

    # --- while the model writes --------------------------------------------------------------------
    def offer(self, partial_markdown: str) -> None:
        """The answer so far (the output check's shown text); appended in batches."""
        self._appends.offer(slack_markdown(partial_markdown))

    def _append(self, text: str) -> None:
        with self._lock:
            if not self._usable:
                return
            if not text.startswith(self._sent) or len(text) > STREAM_TEXT_LIMIT:
                self._usable = False  # the final answer will replace the message instead
                return
            delta = text[len(self._sent):]
        if not delta:
            return
        if not self._budget.take(self.team):
            self.skipped += 1
            return  # the next append (or the stop) carries this text too
        self.quick.chat_appendStream(channel=self.channel, ts=self.ts, chunks=[MarkdownTextChunk(text=delta)])
        with self._lock:
            self._sent = text
            self.appended += 1

    def _broken(self, err: Exception) -> None:
        log.info("stream append failed in %s: %s; the final answer will replace it", self.channel, reason_of(err))
        with self._lock:
            self._usable = False
        self._features.refuse(self.team, Feature.streaming, err)

    # --- the end -----------------------------------------------------------------------------------
    def finish(self, final_markdown: str, tail: list[dict], on_blocks_refused: Callable[[Exception], list[dict] | None]
               ) -> bool:
        """Stop with the rest of `final_markdown` and `tail`; True when the message is now the
        whole answer. False: the stream is stopped and the caller must replace it."""
        self._appends.close()
        final = slack_markdown(final_markdown)
        with self._lock:
            complete = self._usable and final.startswith(self._sent) and len(final) <= STREAM_TEXT_LIMIT
            rest = final[len(self._sent):] if complete else ""
        if not complete:
            self.stop_quietly()
            return False
        chunks = [MarkdownTextChunk(text=rest)] if rest else None
        for attempt in (1, 2):
            try:
                self.client.chat_stopStream(channel=self.channel, ts=self.ts, chunks=chunks, blocks=tail or None)
                return True
            except Exception as err:
                downgraded = on_blocks_refused(err) if attempt == 1 and tail else None
                if downgraded is None:
                    log.warning("chat.stopStream failed in %s: %s", self.channel, reason_of(err))
                    self.stop_quietly()
                    return False
                tail = downgraded
        return False

    def stop_quietly(self) -> None:
        """End the streaming state so the message can be replaced (errors only logged)."""
        self._appends.close()
        try:
            self.client.chat_stopStream(channel=self.channel, ts=self.ts)
        except Exception as err:
            log.info("chat.stopStream failed in %s: %s", self.channel, reason_of(err))
