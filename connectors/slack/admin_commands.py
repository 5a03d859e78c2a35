"""Admin work from Slack: `learn` (mention with a file), the "Add to docent" shortcut and `/docent`
(docs, forget, usage, caps, and the per-channel autoanswer and experts settings).

Authorization is `AdminOperations`' (shared with Discord and the CLI); this module only
establishes who the Slack user is (workspace admin/owner via users.info), fetches files with
docent's token and words the replies.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from admin.operations import parse_cap_usd
from admin.types import Actor, InvalidCap, NotAuthorized, NotFound
from connectors.slack import blocks
from connectors.slack.asking import EVERYWHERE, Asking
from connectors.slack.blocks import expert_mention
from connectors.slack.clients import SlackClients
from connectors.slack.files import FileFetchError, SlackFile, fetch_file
from connectors.slack.help_channels import ChannelSettingsCache, parse_expert
from connectors.slack.mrkdwn import document_text, escape
from connectors.slack.replies import SlackReplies, reason_of
from knowledge.types import WORKSPACE_WIDE, DocumentError, Scope

log = logging.getLogger(__name__)

PLATFORM = "slack"
ADMIN_CACHE_S = 300.0
USER_REF = re.compile(r"<@(?P<id>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")

HELP = """*docent* answers questions from the documents your admins added, with numbered sources.
• Ask: mention me in a channel (`@docent how do I …?`), message me directly, or reply in a thread I answered.
• `/docent ask <question>` — an answer only you see, with *Share in channel*
• Message shortcut *Ask docent about this* — answers from that message, in its thread
• `/docent docs` — documents linked to this channel (and workspace-wide ones)
• `/docent usage [@user]` — questions and cost over the last 30 days (admins can see anyone)
Admins:
• Share a file (PDF, DOCX, TXT, Markdown, HTML) and mention me with `learn` in the same message — it is linked to this channel; `learn --everywhere` makes it workspace-wide.
• Or use the message shortcut *Add to docent* on any message with a file.
• `/docent forget <document>` (`forget --everywhere <document>` for a workspace-wide one)
• `/docent caps` — per-user daily spending caps; `caps set @user 2.50` overrides one, `caps clear @user` restores the default
• `/docent autoanswer on|off` — in a help channel, answer top-level questions without a mention (only when sure; otherwise silent)
• `/docent experts @person|@group|off` — who I suggest asking here when the documents don't answer
• `/docent gaps [days]` — questions I couldn't answer (or that got 👎), grouped by meaning: which document to add next"""


class SlackAdminDirectory:
    """Who is an admin/owner of the asking workspace (users.info), cached briefly.

    `is_admin`/`is_owner` describe the user in *their own* organisation: a Slack Connect user from
    another company can be an admin there and still post in a shared channel here. So the flags
    count only when the user's `team_id` is the workspace asking (and Slack doesn't call them a
    stranger).
    """

    def __init__(self, clients: SlackClients, ttl_s: float = ADMIN_CACHE_S):
        self._clients = clients
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_admin(self, team: str, user: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((team, user))
        if hit and now - hit[0] < self._ttl_s:
            return hit[1]
        try:
            info = self._clients.for_team(team).users_info(user=user)["user"]
            flag = (
                bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
                and bool(team)
                and info.get("team_id") == team
                and not info.get("is_stranger")
            )
        except Exception as err:
            log.warning("users.info failed for %s: %s", user, reason_of(err))
            return False  # not cached: a transient failure shouldn't stick
        with self._lock:
            self._cache[(team, user)] = (now, flag)
        return flag


class AdminCommands:
    def __init__(self, docent, settings, clients: SlackClients, channel_settings: ChannelSettingsCache):
        self.docent = docent
        self.settings = settings
        self.clients = clients
        self.channel_settings = channel_settings
        self.admins = SlackAdminDirectory(clients)
        self.max_file_bytes = int(settings.max_file_mb * 1024 * 1024)

    def replies(self, team: str) -> SlackReplies:
        return SlackReplies(self.clients.for_team(team))

    def actor(self, team: str, user: str) -> Actor:
        return Actor(PLATFORM, team, user, is_platform_admin=self.admins.is_admin(team, user))

    # === learning ================================================================================
    def learn_from_mention(self, asking: Asking, options: str) -> None:
        actor = self.actor(asking.team, asking.user)
        reply_thread = asking.reply_thread
        replies = self.replies(asking.team)
        if not self.docent.admin.is_admin(actor):
            replies.post(asking.channel, reply_thread, blocks.notice(str(NotAuthorized("add documents"))))
            return
        if not asking.files:
            replies.post(
                asking.channel,
                reply_thread,
                blocks.mrkdwn_notice(
                    "To add a document, share the file *in the same message* as `@docent learn`, "
                    "or use the message shortcut *Add to docent* on a message with a file."
                ),
            )
            return
        scope = self._learn_scope(asking.team, asking.channel, asking.is_dm, everywhere=bool(EVERYWHERE.search(options)))
        progress_ts = replies.post(asking.channel, reply_thread, blocks.notice(f"Reading {len(asking.files)} file(s)…"))
        report = self._ingest_files(asking.team, actor, [f.get("id", "") for f in asking.files], scope)
        replies.replace_or_post(asking.channel, reply_thread, progress_ts, blocks.mrkdwn_notice(report))

    def learn_from_shortcut(self, body: dict) -> None:
        team = (body.get("team") or {}).get("id") or body.get("team_id") or ""
        channel = (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id", "")
        actor = self.actor(team, user)
        replies = self.replies(team)
        if not self.docent.admin.is_admin(actor):
            replies.ephemeral(body, channel, user, str(NotAuthorized("add documents")))
            return
        files = (body.get("message") or {}).get("files") or []
        if not files:
            replies.ephemeral(body, channel, user, "That message has no file to add. Use the shortcut on a message with a file.")
            return
        scope = self._learn_scope(team, channel, channel.startswith("D"), everywhere=False)
        report = self._ingest_files(team, actor, [f.get("id", "") for f in files], scope)
        replies.ephemeral(body, channel, user, report, mrkdwn=True)

    def _learn_scope(self, team: str, channel: str, is_dm: bool, *, everywhere: bool) -> Scope:
        if everywhere or (is_dm and not self.settings.slack_dm_channel_docs):
            return Scope.workspace_wide(team)
        return Scope(team, channel)

    def _ingest_files(self, team: str, actor: Actor, file_ids: list[str], scope: Scope) -> str:
        where = "the whole workspace" if scope.channel == WORKSPACE_WIDE else f"<#{scope.channel}>"
        lines: list[str] = []
        for file_id in file_ids:
            try:
                meta, data = fetch_file(self.clients.for_team(team), file_id, max_bytes=self.max_file_bytes)
                report = self.docent.admin.upload(actor, meta.name, data, scope, url=meta.permalink)
            except (FileFetchError, DocumentError, NotAuthorized) as err:
                lines.append(f":x: {document_text(str(err))}")
                continue
            except Exception:
                log.exception("ingesting Slack file %s failed", file_id)
                lines.append(f":x: Something went wrong while reading file {escape(file_id)}; nothing was stored.")
                continue
            lines.append(self._upload_line(report, where, meta))
        return "\n".join(lines)

    @staticmethod
    def _upload_line(report, where: str, meta: SlackFile) -> str:
        record = report.record
        name = document_text(record.title or record.name)
        pages = f"{record.pages} pages, " if record.pages else ""
        if not report.changed:
            line = f":white_check_mark: *{name}* is already up to date for {where} ({pages}{record.chunks} chunks)."
        else:
            verb = "Replaced the earlier version of" if report.replaced else "Learned"
            line = f":white_check_mark: {verb} *{name}* for {where}: {pages}{record.chunks} chunks."
        if report.findings:
            shown = "; ".join(f"“{document_text(f[:150])}”" for f in report.findings[:3])
            state = (
                "It is quarantined: I won't answer from it until an admin reviews it."
                if getattr(record, "quarantined", False)
                else "I will treat its text as data, never as instructions."
            )
            line += f"\n:warning: Parts of *{name}* look like instructions aimed at an AI: {shown}. {state}"
        return line

    # === /docent =================================================================================
    def run_command(self, body: dict, verb: str, rest: str) -> None:
        team = body.get("team_id", "")
        channel = body.get("channel_id", "")
        user = body.get("user_id", "")
        actor = self.actor(team, user)
        is_dm = channel.startswith("D")
        here = Scope(team, None if is_dm and not self.settings.slack_dm_channel_docs else channel)
        try:
            if verb == "docs":
                text = self._docs_text(here)
            elif verb == "forget":
                text = self._forget(actor, team, here, rest)
            elif verb == "usage":
                text = self._usage(actor, team, rest)
            elif verb == "caps":
                text = self._caps(actor, team, rest)
            elif verb == "gaps":  # coverage gaps (admins; admin/gaps.py): `/docent gaps [days]`
                days = min(int(rest), 365) if rest.strip().isdigit() else 30
                text = "```\n" + escape(self.docent.admin.gaps(actor, team, embedder=self.docent.embedder,
                                                              days=days).render_text()) + "\n```"
            elif verb == "autoanswer":
                text = self._autoanswer(actor, channel, rest)
            elif verb == "experts":
                text = self._experts(actor, channel, rest)
            else:
                text = f"I don't know `{escape(verb)}`.\n\n{HELP}"
        except (NotAuthorized, NotFound, InvalidCap) as err:
            text = escape(str(err))
        except Exception:
            log.exception("/docent %s failed", verb)
            text = "Sorry — that didn't work because of a problem on my side. Nothing was changed."
        self.replies(team).ephemeral(body, channel, user, text, mrkdwn=True)

    # --- per-channel settings ------------------------------------------------------------------
    def _autoanswer(self, actor: Actor, channel: str, rest: str) -> str:
        """`autoanswer` shows the setting, `autoanswer on|off` changes it (admins)."""
        if channel.startswith("D"):
            return "Auto-answer is for channels: run `/docent autoanswer on` in the help channel."
        word = rest.strip().lower()
        if word not in ("on", "off"):
            current = self.channel_settings.get(actor.workspace, channel)
            state = "on" if current.autoanswer else "off"
            return f"Auto-answer is *{state}* here. `/docent autoanswer on|off` changes it (admins)."
        found = self.docent.admin.set_autoanswer(actor, channel, word == "on")
        self.channel_settings.changed(found)
        if found.autoanswer:
            return ("Auto-answer is *on* here: I'll answer top-level questions without a mention when the documents "
                    "clearly answer them, and stay silent otherwise. Invite me to the channel if I'm not in it yet.")
        return "Auto-answer is *off* here: mention me to ask."

    def _experts(self, actor: Actor, channel: str, rest: str) -> str:
        """`experts` shows who, `experts @person|@group` sets them, `experts off` clears them (admins)."""
        if channel.startswith("D"):
            return "Experts are set per channel: run `/docent experts @someone` in that channel."
        word = rest.strip()
        if not word:
            current = self.channel_settings.get(actor.workspace, channel)
            if current.experts is None:
                return "No experts are set here. `/docent experts @person` or `@group` sets them (admins)."
            return f"When I can't answer here I suggest asking `{escape(current.experts)}`."
        if word.lower() in ("off", "none", "clear"):
            found = self.docent.admin.set_experts(actor, channel, None)
            self.channel_settings.changed(found)
            return "No experts here any more: when I can't answer I'll just say so."
        reference = parse_expert(word)
        if reference is None or expert_mention(reference) is None:
            return "Name one person or one user group: `/docent experts @person` or `/docent experts @group`."
        found = self.docent.admin.set_experts(actor, channel, reference)
        self.channel_settings.changed(found)
        # The reply shows the id as code: docent's only mention is the one in an abstention.
        return f"When the documents don't answer a question here, I'll suggest asking `{escape(reference)}`."

    def _docs_text(self, scope: Scope) -> str:
        records = self.docent.admin.list_documents(scope, include_workspace=True)
        if not records:
            return "No documents are linked here yet. An admin can share a file and mention me with `learn`."
        lines = ["*Documents docent answers from here:*"]
        for r in records:
            size = f"{r.size_bytes / (1024 * 1024):.1f} MB" if r.size_bytes >= 1024 * 1024 else f"{max(1, r.size_bytes // 1024)} KB"
            when = r.uploaded_at.strftime("%Y-%m-%d") if r.uploaded_at else "?"
            pages = f", {r.pages} pages" if r.pages else ""
            flags = " _(workspace-wide)_" if r.channel == WORKSPACE_WIDE else ""
            if r.quarantined:
                flags += " :warning: quarantined"
            name = escape(r.name.replace("`", "'"))
            lines.append(f"• *{document_text(r.title or r.name)}* (`{name}`) — {size}{pages}, added {when} "
                         f"by {_user_ref(r.uploaded_by)}{flags}")
        return "\n".join(lines)

    def _forget(self, actor: Actor, team: str, here: Scope, rest: str) -> str:
        everywhere = bool(EVERYWHERE.search(" " + rest + " "))
        name = EVERYWHERE.sub(" ", " " + rest + " ").strip().strip("`\"'")
        if not name:
            return "Which document? `/docent forget <document name>` (see `/docent docs`)."
        scope = Scope.workspace_wide(team) if everywhere or here.channel is None else here
        record = self.docent.admin.remove(actor, scope, name)
        return f"Forgot *{document_text(record.title or record.name)}*; I won't answer from it any more."

    def _caps(self, actor: Actor, team: str, rest: str) -> str:
        """`caps` lists the overrides, `caps set @user 2.50` sets one, `caps clear @user` removes it."""
        if not self.docent.admin.is_admin(actor):  # checked again by the operations themselves
            raise NotAuthorized("see or change spending caps")
        action, _, args = rest.partition(" ")
        action = action.lower() or "list"
        default = f"${self.settings.user_daily_cap_usd:,.2f}"
        if action == "list":
            caps = self.docent.admin.user_caps(actor, team)
            if not caps:
                return f"No per-user caps: everyone may spend the default {default} a day."
            lines = [f"*Daily spending caps* (default {default}):"]
            lines += [f"• {_user_ref(c.user)} — ${c.daily_cap_usd:,.2f} (set by {_user_ref(c.set_by)}, "
                      f"{c.set_at:%Y-%m-%d})" for c in caps]
            return "\n".join(lines)
        match = USER_REF.search(args) or SLACK_USER_ID.search(args)
        if action not in ("set", "clear") or match is None:
            return "Usage: `/docent caps`, `/docent caps set @user 2.50` or `/docent caps clear @user`."
        user = match.groupdict().get("id") or match.group(0)
        if action == "clear":
            self.docent.admin.set_user_cap(actor, team, user, None)
            return f"{_user_ref(user)} is back to the default cap of {default} a day."
        amount = parse_cap_usd((args[: match.start()] + args[match.end():]).strip())
        self.docent.admin.set_user_cap(actor, team, user, amount)
        return f"{_user_ref(user)} may now spend up to ${amount:,.2f} a day (default {default})."

    def _usage(self, actor: Actor, team: str, rest: str) -> str:
        match = USER_REF.search(rest)
        target = match.group("id") if match else None
        if target is None and not self.docent.admin.is_admin(actor):
            target = actor.user_id  # non-admins see their own usage
        report = self.docent.admin.usage(actor, team, user=target)
        return "```\n" + escape(report.render_text()) + "\n```"


def _user_ref(user_id: str) -> str:
    """A Slack user id as a mention; anything else (a CLI operator's login …) as plain text."""
    return f"<@{user_id}>" if SLACK_USER_ID.fullmatch(user_id) else escape(user_id)
