"""Slack events in, docent answers out.

Bolt acknowledges every event before a listener runs (`process_before_response=False`); the
listeners here only filter, claim the event (exactly-once), post the placeholder and hand the
slow part — `Docent.ask`, downloads, ingestion — to a bounded worker pool, so slash-command and
shortcut acks never queue behind a 30-second model call.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient

from bot.dedupe import EventDeduper
from bot.streaming import ProgressThrottle
from bot.types import Answer, Attachment, PriorTurn, Question
from connectors.slack import blocks
from connectors.slack.admin_commands import HELP, PLATFORM, AdminCommands
from connectors.slack.asking import Asking, learn_options
from connectors.slack.replies import SORRY_SLACK, ProgressEdits, SlackReplies, reason_of, without_retries
from connectors.slack.work import InFlight, TrackedExecutor

log = logging.getLogger(__name__)

# Plain user messages (and file shares / "also send to channel" replies) are questions; edits,
# deletions, joins and bot posts are not.
QUESTION_SUBTYPES = (None, "file_share", "thread_broadcast")


class SlackConnector:
    def __init__(
        self,
        docent,
        settings,
        client: WebClient,
        *,
        deduper: EventDeduper | None = None,
        answer_workers: int = 8,
    ):
        self.docent = docent
        self.settings = settings
        self.client = client
        self.deduper = deduper or EventDeduper.from_settings(settings, engine_or_db=getattr(docent, "db", None))
        self._identity: tuple[str | None, str | None] | None = None  # (bot user id, bot id)
        self.replies = SlackReplies(client)
        # Progress edits skip the retrying client: a 429 there must never hold an answer up.
        self.progress_client = without_retries(client)
        self.progress_work = ThreadPoolExecutor(max_workers=answer_workers, thread_name_prefix="docent-slack-progress")
        self.admin_commands = AdminCommands(docent, settings, client, self.replies)
        self.in_flight = InFlight()
        self.work = TrackedExecutor(self.in_flight, max_workers=answer_workers, thread_name_prefix="docent-slack")

    def listener_executor(self, max_workers: int = 16) -> ThreadPoolExecutor:
        """The executor Bolt should run listeners on (counted with the answer work)."""
        return TrackedExecutor(self.in_flight, max_workers=max_workers, thread_name_prefix="bolt-listener")

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until no listener or answer is queued or running (graceful shutdown, tests)."""
        return self.in_flight.wait_idle(timeout_s)

    def close(self, *, drain_s: float = 0.0) -> None:
        if drain_s:
            self.wait_idle(drain_s)
        self.work.shutdown(wait=False, cancel_futures=True)
        self.progress_work.shutdown(wait=False, cancel_futures=True)
        self.deduper.close()

    # === Bolt listeners ==========================================================================
    def on_app_mention(self, body: dict, event: dict, context) -> None:
        if self._from_a_bot(event, context):
            return
        asking = self._asking(body, event, context, is_dm=event.get("channel_type") == "im")
        options = learn_options(asking)
        if options is not None:
            self._submit_claimed(f"event:{asking.event_id}", self.admin_commands.learn_from_mention, asking, options)
            return
        self._start_answer(asking, history_source=None)

    def on_message(self, body: dict, event: dict, context) -> None:
        if self._from_a_bot(event, context) or event.get("subtype") not in QUESTION_SUBTYPES:
            return
        text = event.get("text") or ""
        bot_user_id = context.get("bot_user_id")
        if event.get("channel_type") == "im":
            asking = self._asking(body, event, context, is_dm=True)
            options = learn_options(asking)
            if options is not None:
                self._submit_claimed(f"event:{asking.event_id}", self.admin_commands.learn_from_mention, asking, options)
            else:
                self._start_answer(asking, history_source=None)
            return
        # Channel messages: only follow-ups in a thread docent answered, without a mention
        # (a mention arrives as app_mention too and is answered there).
        thread_ts = event.get("thread_ts")
        if not self.settings.slack_thread_followups or not thread_ts or thread_ts == event.get("ts"):
            return
        if bot_user_id and f"<@{bot_user_id}" in text:
            return
        replies = self._thread_replies(event["channel"], thread_ts)
        if not any(self._is_docent(m, context) for m in replies):
            return
        self._start_answer(self._asking(body, event, context, is_dm=False), history_source=replies)

    def on_command(self, ack, body: dict) -> None:
        text = (body.get("text") or "").strip()
        verb, _, rest = text.partition(" ")
        verb = verb.lower()
        if verb in ("", "help"):
            ack(text=HELP)
            return
        ack()
        key = f"command:{body.get('trigger_id') or body.get('team_id')}:{body.get('user_id')}:{text}"
        self._submit_claimed(key, self.admin_commands.run_command, body, verb, rest.strip())

    def on_add_to_docent(self, ack, body: dict) -> None:
        ack()
        self._submit_claimed(f"shortcut:{body.get('trigger_id')}", self.admin_commands.learn_from_shortcut, body)

    def on_feedback(self, ack, body: dict, action: dict) -> None:
        ack()
        request_id = action.get("value") or ""
        user = (body.get("user") or {}).get("id", "")
        helpful = action.get("action_id") == blocks.FEEDBACK_UP
        self.work.submit(self._store_feedback, body, request_id, user, helpful)

    # === asking ==================================================================================
    def _asking(self, body: dict, event: dict, context, *, is_dm: bool) -> Asking:
        return Asking(
            team=body.get("team_id") or event.get("team") or context.get("team_id") or "",
            channel=event["channel"],
            is_dm=is_dm,
            user=event.get("user", ""),
            text=self._strip_mention(event.get("text") or "", context),
            ts=event["ts"],
            thread_ts=event.get("thread_ts"),
            event_id=body.get("event_id") or f"{event['channel']}:{event['ts']}",
            files=tuple(event.get("files") or ()),
        )

    def _start_answer(self, asking: Asking, history_source: list[dict] | None) -> None:
        if not self._claim(f"event:{asking.event_id}"):
            return
        if not asking.text.strip() and not asking.files:
            self.replies.post(asking.channel, asking.reply_thread, blocks.notice("Yes? Ask me a question about your documents."))
            return
        placeholder_ts = self.replies.post(asking.channel, asking.reply_thread, blocks.placeholder())
        self.work.submit(self._answer, asking, placeholder_ts, history_source)

    def _answer(self, asking: Asking, placeholder_ts: str | None, history_source: list[dict] | None) -> None:
        try:
            if history_source is None and asking.thread_ts and asking.thread_ts != asking.ts:
                history_source = self._thread_replies(asking.channel, asking.thread_ts)
            history = self._history(history_source or [], asking)
            attachments = tuple(
                Attachment(name=f.get("name") or "file", size=int(f.get("size") or 0), mimetype=f.get("mimetype"))
                for f in asking.files
            )
            question = Question(
                platform=PLATFORM,
                workspace=asking.team,
                channel=self._question_channel(asking),
                user=asking.user,
                text=asking.text,
                thread=asking.reply_thread,
                history=history,
                attachments=attachments,
                request_id=asking.event_id,
            )
            progress = on_delta = None
            if placeholder_ts:
                progress = ProgressEdits(self.progress_client, asking.channel, placeholder_ts, self.progress_work)
                on_delta = ProgressThrottle(lambda partial: progress.offer(blocks.progress(partial))).update
            try:
                answer = self.docent.ask(question, on_delta=on_delta)
            finally:
                if progress is not None:
                    progress.close()  # the final answer must be the last edit
            self._deliver(asking, placeholder_ts, answer, attachments)
        except Exception:
            log.exception("answering Slack event %s failed", asking.event_id)
            self.replies.replace_or_post(asking.channel, asking.reply_thread, placeholder_ts, blocks.notice(SORRY_SLACK))

    def _deliver(self, asking: Asking, placeholder_ts: str | None, answer: Answer, unread: tuple[Attachment, ...]) -> None:
        messages = blocks.answer_messages(answer, unread=unread)
        first, *more = messages
        self.replies.replace_or_post(asking.channel, asking.reply_thread, placeholder_ts, first)
        for message in more:
            self.replies.post(asking.channel, asking.reply_thread, message)

    def _question_channel(self, asking: Asking) -> str | None:
        if asking.is_dm and not self.settings.slack_dm_channel_docs:
            return None  # a DM sees workspace-wide documents only
        return asking.channel

    def _history(self, replies: list[dict], asking: Asking) -> tuple[PriorTurn, ...]:
        """The thread as prior turns. Only docent's own messages (its bot user / bot id) are
        assistant turns and only the asker's are user turns; everything else — other people,
        other apps, webhooks, Workflow Builder — is quoted to the model as untrusted data."""
        turns: list[PriorTurn] = []
        for message in replies:
            if message.get("ts") == asking.ts:
                continue
            text = message.get("text") or ""
            docent = self._is_docent(message, None)
            if (docent and text == blocks.PLACEHOLDER_TEXT) or not text.strip():
                continue
            if docent:
                author = "assistant"
            elif not _is_app_message(message) and message.get("user") == asking.user:
                author = "user"
            else:
                author = _quoted_author(message)
            turns.append(PriorTurn(author=author, text=self._strip_mention(text, None), is_bot=docent))
        limit = max(0, self.settings.slack_thread_history)
        return tuple(turns[-limit:]) if limit else ()

    def _thread_replies(self, channel: str, thread_ts: str) -> list[dict]:
        try:
            return list(self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200)["messages"])
        except Exception as err:  # no history beats no answer
            log.warning("conversations.replies failed in %s: %s", channel, reason_of(err))
            return []

    # === feedback ================================================================================
    def _store_feedback(self, body: dict, request_id: str, user: str, helpful: bool) -> None:
        channel = (body.get("channel") or {}).get("id", "")
        try:
            self.docent.admin.record_feedback(request_id, user, helpful)
            text = "Thanks — your feedback was recorded." if helpful else "Thanks — noted that this answer didn't help."
        except Exception:
            log.exception("recording feedback for %s failed", request_id)
            text = "Sorry — I couldn't record that feedback."
        self.replies.ephemeral(body, channel, user, text)

    # === Slack plumbing ==========================================================================
    def _claim(self, key: str) -> bool:
        try:
            won = self.deduper.claim(f"slack:{key}")
        except Exception:
            # The shared store is down: answering (maybe twice) beats silently dropping questions.
            log.error("event dedupe store unavailable; handling %s without a claim", key, exc_info=True)
            return True
        if not won:
            log.info("skipping redelivered Slack %s", key)
        return won

    def _submit_claimed(self, key: str, fn, *args) -> None:
        if self._claim(key):
            self.work.submit(self._guarded, fn, *args)

    @staticmethod
    def _guarded(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("Slack task %s failed", getattr(fn, "__name__", fn))

    @staticmethod
    def _from_a_bot(event: dict, context) -> bool:
        return bool(
            event.get("bot_id")
            or event.get("subtype") == "bot_message"
            or (context is not None and event.get("user") and event.get("user") == context.get("bot_user_id"))
            or not event.get("user")
        )

    def _is_docent(self, message: dict, context) -> bool:
        ids = self._bot_identity(context)
        return bool(
            (message.get("bot_id") and message.get("bot_id") == ids[1])
            or (message.get("user") and message.get("user") == ids[0])
        )

    def _bot_identity(self, context) -> tuple[str | None, str | None]:
        if context is not None and context.get("bot_user_id"):
            self._identity = (context.get("bot_user_id"), context.get("bot_id"))
        identity = self._identity
        if identity is None:
            auth = self.client.auth_test()
            identity = self._identity = (auth.get("user_id"), auth.get("bot_id"))
        return identity

    def _strip_mention(self, text: str, context) -> str:
        bot_user_id = self._bot_identity(context)[0]
        if bot_user_id:
            text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
        return text.strip()


def _is_app_message(message: dict) -> bool:
    """Posted by an app, a bot, a webhook or a workflow rather than typed by a person."""
    return bool(message.get("bot_id") or message.get("subtype") == "bot_message" or message.get("app_id"))


def _quoted_author(message: dict) -> str:
    """A display name for someone else's message, never one of the prompt's own roles."""
    profile = message.get("user_profile") or {}
    bot = message.get("bot_profile") or {}
    name = (
        profile.get("display_name") or profile.get("real_name") or message.get("username")
        or bot.get("name") or message.get("user") or "someone"
    )
    if _is_app_message(message):
        return f"{name} (app)"
    if name.casefold() in ("user", "assistant"):  # a person called "assistant" is still quoted
        return f"{name} ({message.get('user') or 'someone'})"
    return name
