"""Slack events in, docent answers out.

Bolt acknowledges every event before a listener runs (`process_before_response=False`); the
listeners here only filter, claim the event (exactly-once), open the answer (a native stream,
else today's placeholder) and hand the slow part — `Docent.ask`, downloads, ingestion — to a
bounded worker pool, so slash-command and shortcut acks never queue behind a 30-second model call.

Ways to ask, all through the one `Docent.ask`: a mention, a DM, a follow-up in a thread docent
answered, an assistant thread (connectors/slack/assistant.py), `/docent ask` (private, with
"Share in channel"), the message shortcut "Ask docent about this", and — in channels an admin
turned it on for — a top-level question without a mention, answered only when docent is sure.
Every Web API call uses the asking workspace's own client (`SlackClients`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from admin.types import Actor
from bot.dedupe import EventDeduper
from bot.guards.cache import answer_from_json, answer_to_json
from bot.streaming import ProgressThrottle
from bot.types import Answer, Attachment, Outcome, PriorTurn, Question
from connectors.slack import blocks
from connectors.slack.admin_commands import HELP, PLATFORM, AdminCommands
from connectors.slack.asking import Asking, learn_options
from connectors.slack.clients import NotInstalled, SlackClients
from connectors.slack.delivery import Delivery
from connectors.slack.expiring import ExpiringValues
from connectors.slack.features import Feature, WorkspaceFeatures
from connectors.slack.help_channels import ChannelSettingsCache, autoanswer_min_score, sure_enough
from connectors.slack.mrkdwn import escape
from connectors.slack.replies import SORRY_SLACK, ProgressEdits, SlackReplies, reason_of
from connectors.slack.stream import AppendBudget, NativeStream
from connectors.slack.work import InFlight, TrackedExecutor

log = logging.getLogger(__name__)

# Plain user messages (and file shares / "also send to channel" replies) are questions; edits,
# deletions, joins and bot posts are not.
QUESTION_SUBTYPES = (None, "file_share", "thread_broadcast")
SHARED_PREFIX = "share:"
UNINSTALLER = "slack:app_uninstalled"


@dataclass
class AnswerTarget:
    """Where an answer is being written: a native stream, or a placeholder message (or neither)."""

    ts: str | None = None
    stream: NativeStream | None = None

    @property
    def message_ts(self) -> str | None:
        return self.stream.ts if self.stream is not None else self.ts


class SlackConnector:
    def __init__(
        self,
        docent,
        settings,
        clients: SlackClients,
        *,
        deduper: EventDeduper | None = None,
        answer_workers: int = 8,
    ):
        self.docent = docent
        self.settings = settings
        self.clients = clients
        self.deduper = deduper or EventDeduper.from_settings(settings, engine_or_db=getattr(docent, "db", None))
        self._identities: dict[str, tuple[str | None, str | None]] = {}  # team → (bot user id, bot id)
        self.features = WorkspaceFeatures(settings)
        self.delivery = Delivery(self.features)
        redis = getattr(getattr(docent, "guards", None), "redis", None)
        prefix = settings.redis_key_prefix
        self.stash = ExpiringValues(redis=redis, prefix=f"{prefix}:slack")
        self.append_budget = AppendBudget(settings.slack_stream_appends_per_minute, redis_url=settings.redis_url,
                                          key_prefix=f"{prefix}:slack-append")
        self.channel_settings = ChannelSettingsCache(docent.admin)
        # Progress edits and stream appends run here, through clients without retries: a 429
        # there must never hold an answer up.
        self.progress_work = ThreadPoolExecutor(max_workers=answer_workers, thread_name_prefix="docent-slack-progress")
        self.admin_commands = AdminCommands(docent, settings, clients, self.channel_settings)
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

    def replies(self, team: str) -> SlackReplies:
        return SlackReplies(self.clients.for_team(team))

    @property
    def autoanswer_min_score(self) -> float:
        return autoanswer_min_score(self.settings, self.docent.answerability.threshold)

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
        if bot_user_id and f"<@{bot_user_id}" in text:
            return  # a mention arrives as app_mention too and is answered there
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            # A top-level channel message: a question only in a help channel.
            if event.get("channel_type") in ("channel", "group", None) and event.get("subtype") is None:
                self._maybe_autoanswer(body, event, context)
            return
        # A reply in a thread: a follow-up when docent answered in that thread.
        if not self.settings.slack_thread_followups:
            return
        team = self._team(body, event, context)
        replies = self._thread_replies(team, event["channel"], thread_ts)
        if not any(self._is_docent(team, m, context) for m in replies):
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
        if verb == "ask":
            self._submit_claimed(key, self._ask_privately, body, rest.strip())
            return
        self._submit_claimed(key, self.admin_commands.run_command, body, verb, rest.strip())

    def on_add_to_docent(self, ack, body: dict) -> None:
        ack()
        self._submit_claimed(f"shortcut:{body.get('trigger_id')}", self.admin_commands.learn_from_shortcut, body)

    def on_ask_about_message(self, ack, body: dict) -> None:
        """The message shortcut "Ask docent about this": the message's text is the question,
        answered in that message's thread."""
        ack()
        if not self._claim(f"shortcut:{body.get('trigger_id')}"):
            return
        self.work.submit(self._guarded, self._ask_about_message, body)

    def on_feedback(self, ack, body: dict, action: dict) -> None:
        ack()
        vote = blocks.feedback_vote(action)
        if vote is None:
            return
        user = (body.get("user") or {}).get("id", "")
        self.work.submit(self._store_feedback, body, vote[0], user, vote[1], _action_time(action))

    def on_share(self, ack, body: dict, action: dict) -> None:
        ack()
        self.work.submit(self._guarded, self._share, body, action.get("value") or "")

    def on_app_uninstalled(self, body: dict, context) -> None:
        """Slack removed docent from a workspace: its tokens, documents and channel settings go."""
        team = self._team(body, body.get("event") or {}, context)
        if not team or not self._claim(f"event:{body.get('event_id')}"):
            return
        self.work.submit(self._guarded, self._forget_workspace, team, context.get("enterprise_id"))

    def on_tokens_revoked(self, body: dict, event: dict, context) -> None:
        """Some of a workspace's tokens were revoked: forget them (the workspace's data stays)."""
        team = self._team(body, event, context)
        tokens = event.get("tokens") or {}
        store = self.clients.installations
        if store is not None:
            for user in tokens.get("oauth") or []:
                store.delete_installation(enterprise_id=context.get("enterprise_id"), team_id=team, user_id=user)
            if tokens.get("bot"):
                store.delete_bot(enterprise_id=context.get("enterprise_id"), team_id=team)
        self.clients.forget(team)
        log.warning("Slack revoked tokens in %s: %s", team, {k: len(v or []) for k, v in tokens.items()})

    # === asking ==================================================================================
    @staticmethod
    def _team(body: dict, event: dict, context) -> str:
        return (body.get("team_id") or (body.get("team") or {}).get("id") or event.get("team")
                or (context.get("team_id") if context is not None else None) or "")

    def _asking(self, body: dict, event: dict, context, *, is_dm: bool, **extra) -> Asking:
        team = self._team(body, event, context)
        return Asking(
            team=team,
            channel=event["channel"],
            is_dm=is_dm,
            user=event.get("user", ""),
            text=self._strip_mention(team, event.get("text") or "", context),
            ts=event["ts"],
            thread_ts=event.get("thread_ts"),
            event_id=body.get("event_id") or f"{event['channel']}:{event['ts']}",
            files=tuple(event.get("files") or ()),
            **extra,
        )

    def _start_answer(self, asking: Asking, history_source: list[dict] | None, *, claimed: bool = False,
                      only_if_posted: bool = False) -> bool:
        """Claim the question, open its answer (stream or placeholder) and queue the work. When
        nothing could be posted the answer is still tried (it posts itself, or an apology) — unless
        `only_if_posted`; returns False then."""
        if not claimed and not self._claim(f"event:{asking.event_id}"):
            return True
        replies = self.replies(asking.team)
        if not asking.text.strip() and not asking.files:
            replies.post(asking.channel, asking.reply_thread, blocks.notice("Yes? Ask me a question about your documents."))
            return True
        target = self._open_answer(asking, replies)
        if target.message_ts is None and only_if_posted:
            return False
        self.work.submit(self._answer, asking, target, history_source)
        return True

    def _open_answer(self, asking: Asking, replies: SlackReplies) -> AnswerTarget:
        """A native stream where Slack allows one (it needs a thread); else today's placeholder."""
        thread = asking.reply_thread
        if thread and self.features.allowed(asking.team, Feature.streaming):
            stream = NativeStream.start(
                self.clients.for_team(asking.team), self.clients.quick(asking.team), team=asking.team,
                channel=asking.channel, thread_ts=thread, user=asking.user, features=self.features,
                budget=self.append_budget, executor=self.progress_work,
            )
            if stream is not None:
                return AnswerTarget(stream=stream)
        return AnswerTarget(ts=replies.post(asking.channel, thread, blocks.placeholder()))

    def _question(self, asking: Asking, history: tuple[PriorTurn, ...] = (),
                  attachments: tuple[Attachment, ...] = ()) -> Question:
        return Question(
            platform=PLATFORM,
            workspace=asking.team,
            channel=self._question_channel(asking),
            user=asking.user,
            text=asking.text,
            thread=asking.reply_thread or None,
            history=history,
            attachments=attachments,
            request_id=asking.event_id,
        )

    def _answer(self, asking: Asking, target: AnswerTarget, history_source: list[dict] | None) -> None:
        replies = self.replies(asking.team)
        try:
            if history_source is None and asking.thread_ts and asking.thread_ts != asking.ts:
                history_source = self._thread_replies(asking.team, asking.channel, asking.thread_ts)
            attachments = tuple(
                Attachment(name=f.get("name") or "file", size=int(f.get("size") or 0), mimetype=f.get("mimetype"))
                for f in asking.files
            )
            question = self._question(asking, self._history(asking.team, history_source or [], asking), attachments)
            progress = on_delta = None
            if target.stream is not None:
                on_delta = ProgressThrottle(target.stream.offer).update
            elif target.ts:
                progress = ProgressEdits(self.clients.quick(asking.team), asking.channel, target.ts, self.progress_work)
                on_delta = ProgressThrottle(lambda partial: progress.offer(blocks.progress(partial))).update
            try:
                answer = self.docent.ask(question, on_delta=on_delta)
            finally:
                if progress is not None:
                    progress.close()  # the final answer must be the last edit
            self._deliver(asking, target, answer, attachments)
        except Exception:
            log.exception("answering Slack event %s failed", asking.event_id)
            if target.stream is not None:
                target.stream.stop_quietly()
            replies.replace_or_post(asking.channel, asking.reply_thread, target.message_ts, blocks.notice(SORRY_SLACK))

    def _experts(self, asking: Asking, answer: Answer) -> str | None:
        """The channel's experts, named only on an abstention (see `blocks.expert_mention`)."""
        # An assistant thread (a DM) names the experts of the channel it was opened next to.
        channel = asking.context_channel or (None if asking.is_dm else asking.channel)
        if answer.outcome is not Outcome.abstained or channel is None:
            return None
        try:
            return self.channel_settings.get(asking.team, channel).experts
        except Exception:  # no expert beats no answer
            log.warning("reading channel settings for %s failed", asking.channel, exc_info=True)
            return None

    def _deliver(self, asking: Asking, target: AnswerTarget, answer: Answer, unread: tuple[Attachment, ...]) -> None:
        team = asking.team
        experts = self._experts(asking, answer)
        style = self.features.style(team)
        if target.stream is not None:
            tail = blocks.tail_blocks(answer, unread=unread, style=style, experts=experts)

            def downgrade(err: Exception) -> list[dict] | None:
                retry = self.delivery.learn(team, err, tail)
                return blocks.downgrade(tail, retry) if retry is not None else None

            if target.stream.finish(answer.text, tail, downgrade):
                return
            style = self.features.style(team)
        messages = blocks.answer_messages(answer, unread=unread, style=style, experts=experts)
        self.delivery.deliver(self.replies(team), team, asking.channel, asking.reply_thread, target.message_ts,
                              messages)

    def _question_channel(self, asking: Asking) -> str | None:
        if asking.context_channel:
            return asking.context_channel  # an assistant thread opened next to that channel
        if asking.is_dm and not self.settings.slack_dm_channel_docs:
            return None  # a DM sees workspace-wide documents only
        return asking.channel

    def _history(self, team: str, replies: list[dict], asking: Asking) -> tuple[PriorTurn, ...]:
        """The thread as prior turns. Only docent's own messages (its bot user / bot id) are
        assistant turns and only the asker's are user turns; everything else — other people,
        other apps, webhooks, Workflow Builder — is quoted to the model as untrusted data."""
        turns: list[PriorTurn] = []
        for message in replies:
            if message.get("ts") == asking.ts:
                continue
            text = message.get("text") or ""
            docent = self._is_docent(team, message, None)
            if (docent and text == blocks.PLACEHOLDER_TEXT) or not text.strip():
                continue
            if docent:
                author = "assistant"
            elif not _is_app_message(message) and message.get("user") == asking.user:
                author = "user"
            else:
                author = _quoted_author(message)
            stripped = self._strip_mention(team, text, None)
            # A message that @mentioned docent was put to it: it is the one docent's next reply
            # answered, even when someone else spoke in between (followups.thread_question_indices).
            turns.append(PriorTurn(author=author, text=stripped, is_bot=docent,
                                   to_docent=not docent and stripped != text.strip()))
        limit = max(0, self.settings.slack_thread_history)
        return tuple(turns[-limit:]) if limit else ()

    def _thread_replies(self, team: str, channel: str, thread_ts: str) -> list[dict]:
        try:
            return list(self.clients.for_team(team).conversations_replies(channel=channel, ts=thread_ts,
                                                                          limit=200)["messages"])
        except Exception as err:  # no history beats no answer
            log.warning("conversations.replies failed in %s: %s", channel, reason_of(err))
            return []

    # === help channels ===========================================================================
    def _maybe_autoanswer(self, body: dict, event: dict, context) -> None:
        team = self._team(body, event, context)
        try:
            if not self.channel_settings.get(team, event["channel"]).autoanswer:
                return
        except Exception:
            log.warning("reading channel settings for %s failed", event.get("channel"), exc_info=True)
            return
        asking = self._asking(body, event, context, is_dm=False)
        if not asking.text.strip() or not self._claim(f"event:{asking.event_id}"):
            return
        self.work.submit(self._guarded, self._autoanswer, asking)

    def _autoanswer(self, asking: Asking) -> None:
        """Answer without having been asked — only when sure; otherwise say nothing at all."""
        answer = self.docent.ask(self._question(asking))
        if not sure_enough(answer, self.autoanswer_min_score):
            log.info("auto-answer in %s stayed silent: %s, answerability %s", asking.channel, answer.outcome,
                     answer.answerability)
            return
        self._deliver(asking, AnswerTarget(), answer, ())

    # === /docent ask, "Share in channel" =========================================================
    def _ask_privately(self, body: dict, text: str) -> None:
        team, channel, user = body.get("team_id", ""), body.get("channel_id", ""), body.get("user_id", "")
        replies = self.replies(team)
        if not text:
            replies.ephemeral(body, channel, user, "What's the question? `/docent ask how many vacation days do we get?`",
                              mrkdwn=True)
            return
        asking = Asking(team=team, channel=channel, is_dm=channel.startswith("D"), user=user, text=text, ts="",
                        thread_ts=None, event_id=f"command:{body.get('trigger_id') or secrets.token_hex(8)}")
        answer = self.docent.ask(self._question(asking))
        share_key = None
        if answer.outcome is Outcome.answered:
            share_key = secrets.token_urlsafe(16)  # unguessable: it stands for someone's private answer
            self.stash.put(SHARED_PREFIX + share_key, json.dumps({
                "answer": answer_to_json(answer), "team": team, "channel": channel, "user": user, "question": text,
            }), self.settings.slack_private_answer_ttl_s)
        messages = blocks.answer_messages(answer, style=self.features.style(team), share_key=share_key,
                                          experts=self._experts(asking, answer))
        for message in messages:
            if not self.delivery.ephemeral(replies, team, body, channel, user, message):
                log.error("could not show a private answer to %s in %s", user, channel)
                return

    def _share(self, body: dict, key: str) -> None:
        team = self._team(body, {}, None)
        channel = (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id", "")
        replies = self.replies(team)
        raw = self.stash.get(SHARED_PREFIX + key) if key else None
        stored = json.loads(raw) if raw else None
        if stored is None:
            replies.ephemeral(body, channel, user, "That answer can't be shared any more — ask again to share a new one.")
            return
        if stored["user"] != user or stored["team"] != team:
            replies.ephemeral(body, channel, user, "Only the person who asked can share this answer.")
            return
        if not self._claim(f"share:{key}"):
            return  # a double click: shared once
        answer = answer_from_json(stored["answer"])
        messages = blocks.answer_messages(answer, style=self.features.style(team))
        intro = blocks.context(f":speech_balloon: Shared from a private `/docent ask`: “{escape(stored['question'][:300])}”")
        first, *more = messages
        messages = [blocks.SlackMessage(first.text, (intro, *first.blocks)), *more]
        if self.delivery.deliver(replies, team, stored["channel"], None, None, messages):
            self.stash.delete(SHARED_PREFIX + key)
            replies.ephemeral_message(body, channel, user, blocks.notice("Shared in the channel."), replace_original=True)

    # === the message shortcut ====================================================================
    def _ask_about_message(self, body: dict) -> None:
        team = self._team(body, {}, None)
        channel = (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id", "")
        message = body.get("message") or {}
        replies = self.replies(team)
        text = self._strip_mention(team, message.get("text") or "", None)
        if not text.strip() or not message.get("ts"):
            replies.ephemeral(body, channel, user, "That message has no text to ask about.")
            return
        asking = Asking(team=team, channel=channel, is_dm=channel.startswith("D"), user=user, text=text,
                        ts=message["ts"], thread_ts=message.get("thread_ts") or message["ts"],
                        event_id=f"shortcut:{body.get('trigger_id')}")
        if not self._start_answer(asking, history_source=None, claimed=True, only_if_posted=True):
            replies.ephemeral(body, channel, user, "I couldn't post in this conversation — invite me with "
                                                   "`/invite @docent` and try again.", mrkdwn=True)

    # === feedback ================================================================================
    def _store_feedback(self, body: dict, request_id: str, user: str, helpful: bool, at: datetime | None) -> None:
        channel = (body.get("channel") or {}).get("id", "")
        team = self._team(body, {}, None)
        try:
            self.docent.admin.record_feedback(request_id, user, helpful, at=at)
            text = "Thanks — your feedback was recorded." if helpful else "Thanks — noted that this answer didn't help."
        except Exception:
            log.exception("recording feedback for %s failed", request_id)
            text = "Sorry — I couldn't record that feedback."
        self.replies(team).ephemeral(body, channel, user, text)

    # === uninstall ===============================================================================
    def _forget_workspace(self, team: str, enterprise_id: str | None) -> None:
        store = self.clients.installations
        if store is not None:
            store.delete_all(enterprise_id=enterprise_id, team_id=team)
        self.clients.forget(team)
        self.channel_settings.forget_workspace(team)
        self._identities.pop(team, None)
        forgotten = self.docent.admin.forget_workspace(Actor(PLATFORM, team, UNINSTALLER, is_platform_admin=True),
                                                       team)
        log.warning("docent was uninstalled from %s: removed %d documents", team, forgotten.documents)

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
        except NotInstalled as err:
            log.error("Slack task %s: no installation for workspace %s", getattr(fn, "__name__", fn), err)
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

    def _is_docent(self, team: str, message: dict, context) -> bool:
        ids = self._bot_identity(team, context)
        return bool(
            (message.get("bot_id") and message.get("bot_id") == ids[1])
            or (message.get("user") and message.get("user") == ids[0])
        )

    def _bot_identity(self, team: str, context) -> tuple[str | None, str | None]:
        """docent's bot user and bot id in `team` (each workspace has its own)."""
        if context is not None and context.get("bot_user_id"):
            self._identities[team] = (context.get("bot_user_id"), context.get("bot_id"))
        identity = self._identities.get(team)
        if identity is None:
            auth = self.clients.for_team(team).auth_test()
            identity = self._identities[team] = (auth.get("user_id"), auth.get("bot_id"))
        return identity

    def _strip_mention(self, team: str, text: str, context) -> str:
        bot_user_id = self._bot_identity(team, context)[0]
        if bot_user_id:
            text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
        return text.strip()


def _action_time(action: dict) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(action["action_ts"]), tz=timezone.utc)
    except (KeyError, TypeError, ValueError):
        return None


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
