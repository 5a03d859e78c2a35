"""Slack's agent / assistant surface (slack_bolt's `Assistant`): docent in the split view.

- A new assistant thread gets suggested prompts drawn from the documents linked where the user
  is (the channel they were viewing, plus workspace-wide ones); the thread remembers that
  channel (`StashedThreadContexts`), and questions in it answer from that channel's documents.
- A question sets the thread's title (its first question), shows "Searching 12 documents…"
  (assistant.threads.setStatus) and is answered like any other — streamed natively where Slack
  allows it — through the one `Docent.ask`.
- When Slack refuses these calls (no assistant feature, a token without `assistant:write` …)
  the workspace is marked and the thread is an ordinary DM thread: no prompts (a short greeting
  with example questions instead), no status, no title — the answer still comes.
"""

from __future__ import annotations

import json
import logging
import re

from slack_bolt import Assistant
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.store import AssistantThreadContextStore

from connectors.slack import blocks
from connectors.slack.expiring import ExpiringValues
from connectors.slack.features import Feature
from connectors.slack.mrkdwn import document_text
from knowledge.types import Scope

log = logging.getLogger(__name__)

THREAD_CONTEXT_TTL_S = 7 * 24 * 3600
MAX_PROMPTS = 4  # Slack shows at most four
TITLE_CHARS = 80
GREETING = "Hi — I answer questions from your team's documents, with sources."


class StashedThreadContexts(AssistantThreadContextStore):
    """Which channel each assistant thread was opened next to — in docent's expiring store
    rather than Bolt's default (message metadata, read back with conversations.replies)."""

    def __init__(self, stash: ExpiringValues) -> None:
        self._stash = stash

    def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        # Saved for every thread Slack opened as an assistant thread, even next to nothing: a
        # thread found here is an assistant thread, any other DM thread is an ordinary one.
        context = {**context, "channel_id": context.get("channel_id")}
        self._stash.put(f"assistant:{channel_id}:{thread_ts}", json.dumps(context), THREAD_CONTEXT_TTL_S)

    def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        raw = self._stash.get(f"assistant:{channel_id}:{thread_ts}")
        return AssistantThreadContext(json.loads(raw)) if raw else None


def suggested_prompts(titles: list[str]) -> list[dict[str, str]]:
    """Up to four prompts about the documents docent would answer from."""
    prompts = [{"title": f"About {t[:60]}", "message": f"What are the key points of “{t}”?"} for t in titles]
    prompts.append({"title": "What can you answer?", "message": "Which documents can you answer questions from?"})
    return prompts[:MAX_PROMPTS]


def thread_title(question: str) -> str:
    text = re.sub(r"[<>&]", "", " ".join(question.split()))  # a title is plain text: no control characters
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def _viewing(context: dict | None) -> str | None:
    """The channel the user was looking at, if it is a channel (a DM's context scopes nothing)."""
    channel = (context or {}).get("channel_id") or ""
    return channel if channel[:1] in ("C", "G") else None


class AssistantSurface:
    def __init__(self, connector) -> None:
        self.connector = connector
        self.contexts = StashedThreadContexts(connector.stash)

    def middleware(self) -> Assistant:
        assistant = Assistant(thread_context_store=self.contexts)
        assistant.thread_started(self.on_thread_started)
        assistant.user_message(self.on_user_message)
        return assistant

    def _scope(self, team: str, channel: str | None) -> Scope:
        return Scope(team, channel) if channel else Scope.workspace_wide(team)

    def _refused(self, team: str, what: str, err: Exception) -> None:
        log.info("assistant %s refused in %s: %s", what, team, err)
        self.connector.features.refuse(team, Feature.assistant, err)

    # --- listeners ---------------------------------------------------------------------------------
    def on_thread_started(self, body: dict, payload: dict, context, set_suggested_prompts) -> None:
        conn = self.connector
        thread = payload.get("assistant_thread") or {}
        team = conn._team(body, payload, context)
        thread_context = thread.get("context") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            self.contexts.save(channel_id=thread["channel_id"], thread_ts=thread["thread_ts"], context=thread_context)
        try:
            docs = conn.docent.admin.list_documents(self._scope(team, _viewing(thread_context)), include_workspace=True)
        except Exception:
            log.warning("listing documents for suggested prompts failed", exc_info=True)
            docs = []
        prompts = suggested_prompts([d.title or d.name for d in docs])
        if conn.features.allowed(team, Feature.assistant):
            try:
                set_suggested_prompts(prompts=prompts, title="Ask about your documents")
                return
            except Exception as err:
                self._refused(team, "suggested prompts", err)
        # No assistant surface: the same suggestions as a plain greeting in the thread.
        examples = "\n".join(f"• {document_text(p['message'])}" for p in prompts)
        conn.replies(team).post(thread.get("channel_id", ""), thread.get("thread_ts"),
                                blocks.mrkdwn_notice(f"{GREETING} For example:\n{examples}"))

    def on_user_message(self, body: dict, payload: dict, context, set_status, set_title, get_thread_context) -> None:
        conn = self.connector
        if conn._from_a_bot(payload, context) or payload.get("subtype") not in (None, "file_share"):
            return
        try:
            thread_context = get_thread_context()
        except Exception:
            log.warning("assistant thread context unavailable", exc_info=True)
            thread_context = None
        # Bolt hands every DM thread reply here; only threads Slack opened as assistant threads
        # get a title and a status (on any other, Slack would refuse them).
        known = thread_context is not None
        asking = conn._asking(body, payload, context, is_dm=True, context_channel=_viewing(thread_context),
                              assistant=known)
        if not conn._claim(f"event:{asking.event_id}"):
            return
        history = conn._thread_replies(asking.team, asking.channel, asking.thread_ts) if asking.thread_ts else []
        if known and conn.features.allowed(asking.team, Feature.assistant):
            self._decorate(asking, history, set_status, set_title)
        conn._start_answer(asking, history_source=history, claimed=True)

    def _decorate(self, asking, history: list[dict], set_status, set_title) -> None:
        """Title (first question only) and "Searching N documents…"; a refusal marks the workspace."""
        conn = self.connector
        earlier = [m for m in history if m.get("user") == asking.user and m.get("ts") != asking.ts
                   and not m.get("bot_id")]
        try:
            if not earlier and asking.text.strip():
                set_title(thread_title(asking.text))
            count = len(conn.docent.admin.list_documents(self._scope(asking.team, asking.context_channel),
                                                         include_workspace=True))
            set_status(status=f"Searching {count} document{'s' if count != 1 else ''}…")
        except Exception as err:
            self._refused(asking.team, "status/title", err)
