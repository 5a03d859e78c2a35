"""docent's commands: /ask, the message menu "Ask docent", /docs upload|list|remove|gaps, /usage,
/caps set|clear|list.

Every command turns the interaction into docent's terms (`context.py`), calls the shared core
(`Docent.aask`) or admin operation (`docent.admin`), and renders the result (`rendering.py`).
Blocking work (the answer chain, ingestion, SQL) runs in worker threads so the event loop stays
free to acknowledge other interactions within Discord's 3 seconds.

Admin commands: Discord honours `default_permissions` only on a top-level command — on a
subcommand it is silently ignored — so it is declared on the `/docs` group (shown to members with
Manage Server by default; a server can grant `/docs` to more roles in Server Settings →
Integrations). That only hides the commands. The real protection is the server-side check in
`upload` and `remove` (Manage Server, Administrator or a role in DOCENT_DISCORD_ADMIN_ROLE_IDS,
plus DOCENT_ADMIN_USER_IDS): anyone else gets an ephemeral refusal and nothing changes. `/caps`
is declared and checked the same way.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable, Literal

import discord
from discord import app_commands

from admin.types import InvalidCap, NotAuthorized, NotFound
from bot.streaming import ProgressThrottle
from bot.types import Answer, Outcome
from connectors.discord.attachments import download, precheck
from connectors.discord.context import actor_of, place_of, question_of
from connectors.discord.rendering import (
    DESCRIPTION_LIMIT,
    document_text,
    pack_lines,
    group_into_messages,
    progress_embed,
    render_answer,
    render_gaps,
    split_text,
)
from connectors.discord.threads import answer_view, can_offer_thread, thread_history
from knowledge.types import DocumentError, Scope

if TYPE_CHECKING:
    from bot.core import Docent
    from bot.settings import Settings

log = logging.getLogger(__name__)

APOLOGY = "Sorry — something went wrong on my side. Nothing was changed; please try again."
NOT_ADMIN = "Sorry — only server admins (Manage Server) can {action}. Nothing was changed."
STREAM_EDIT_INTERVAL_S = 1.0  # Discord allows ~5 webhook edits / 5 s; one a second leaves room
MAX_AUTOCOMPLETE = 25
MB = 1024 * 1024


def _docent(interaction: discord.Interaction) -> "Docent":
    return interaction.client.docent  # type: ignore[attr-defined]


def _settings(interaction: discord.Interaction) -> "Settings":
    return interaction.client.settings  # type: ignore[attr-defined]


async def _say(interaction: discord.Interaction, text: str | None, *, ephemeral: bool = True, **kwargs) -> None:
    """Reply whether or not the interaction was already answered or deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, **kwargs)


# --- answering ---------------------------------------------------------------------------------


class StreamingEdits:
    """Shows a streaming answer by editing the deferred message, at most once per second.

    `on_delta` is called by the core from its worker thread; each throttled edit hops onto the
    event loop with `run_coroutine_threadsafe`. `finish()` waits for edits already under way so
    the final answer is always the last edit.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        edit: Callable[[str], Awaitable[object]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._loop = loop
        self._edit = edit
        self._futures: list[asyncio.Future] = []
        self._closed = False
        self._lock = asyncio.Lock()
        self.edits_sent = 0
        self._throttle = ProgressThrottle(self._emit, min_interval_s=STREAM_EDIT_INTERVAL_S, clock=clock)

    def on_delta(self, text_so_far: str) -> None:
        if not self._closed:
            self._throttle.update(text_so_far)

    def _emit(self, text: str) -> None:
        if self._closed:
            return
        self._futures.append(asyncio.run_coroutine_threadsafe(self._edit_in_order(text), self._loop))

    async def _edit_in_order(self, text: str) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                await self._edit(text)
                self.edits_sent += 1
            except discord.HTTPException:  # a lost progress edit is harmless: the final edit follows
                log.debug("progress edit failed", exc_info=True)

    async def finish(self) -> None:
        pending = [asyncio.wrap_future(f) for f in self._futures]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._closed = True


async def send_answer(interaction: discord.Interaction, answer: Answer, *, question: str, private: bool,
                      link: str | None = None) -> None:
    """Replace the deferred "thinking…" message with the answer; overflow goes into follow-ups."""
    messages = group_into_messages(render_answer(answer, question=question, link=link))
    view = (
        answer_view(answer.request_id, offer_thread=can_offer_thread(interaction, private=private))
        if answer.outcome in (Outcome.answered, Outcome.abstained)
        else None
    )
    first, rest = messages[0], messages[1:]
    # The buttons go under the last message, after the sources.
    await interaction.edit_original_response(content=None, embeds=first, view=view if not rest else None)
    for i, batch in enumerate(rest):
        last = i == len(rest) - 1
        kwargs = {"view": view} if (last and view is not None) else {}
        await interaction.followup.send(embeds=batch, ephemeral=private, **kwargs)


async def answer_interaction(interaction: discord.Interaction, text: str, *, private: bool,
                             link: str | None = None, thread_context: bool = True) -> Answer | None:
    """Defer first (Discord's 3-second deadline), then ask the core and show the answer. In a
    thread (with `thread_context`), the thread so far goes with the question."""
    await interaction.response.defer(thinking=True, ephemeral=private)
    docent, settings = _docent(interaction), _settings(interaction)
    history = ()
    if thread_context and isinstance(interaction.channel, discord.Thread):
        history = await thread_history(interaction.channel, interaction.client, asker_id=interaction.user.id)
    question = question_of(interaction, text, settings, history=history)
    streaming = (
        StreamingEdits(
            asyncio.get_running_loop(),
            lambda partial: interaction.edit_original_response(embeds=[progress_embed(partial)]),
        )
        if settings.streaming
        else None
    )
    try:
        answer = await docent.aask(question, on_delta=streaming.on_delta if streaming else None)
    except Exception:  # the core promises not to raise for user problems; this is ours
        log.exception("answering interaction %s failed", interaction.id)
        if streaming:
            await streaming.finish()
        await interaction.edit_original_response(content=APOLOGY, embeds=[])
        return None
    if streaming:
        await streaming.finish()
    await send_answer(interaction, answer, question=text, private=private, link=link)
    return answer


@app_commands.command(name="ask", description="Ask a question about this channel's documents.")
@app_commands.describe(
    question="What you want to know",
    private="Only you see the answer (default: everyone in the channel)",
)
async def ask_command(
    interaction: discord.Interaction,
    question: app_commands.Range[str, 1, 2000],
    private: bool = False,
) -> None:
    await answer_interaction(interaction, question, private=private)


QUESTION_LIMIT = 2000  # what /ask accepts


def message_text(message: discord.Message) -> str:
    """What a message says: its content, else (a bot's message) its embeds' titles and text."""
    text = message.content.strip()
    if not text:
        text = "\n".join(bit for e in message.embeds for bit in (e.title, e.description) if bit).strip()
    return text[:QUESTION_LIMIT]


@app_commands.context_menu(name="Ask docent")
async def ask_about_message(interaction: discord.Interaction, message: discord.Message) -> None:
    """Answer from a message's text, privately to whoever asked.

    Ephemeral rather than in a thread: the message may be someone else's, who never asked docent
    anything — a public reply or a thread on it would speak for them and notify the channel. An
    ephemeral reply needs no Send Messages or Create Threads permission, so it works in every
    channel docent can see; the asker can still `/ask` publicly. Discord sends the target
    message's content with the command, so no message-content intent is needed.
    """
    text = message_text(message)
    if not text:
        await _say(interaction, "That message has no text I can ask about.")
        return
    await answer_interaction(interaction, text, private=True, link=message.jump_url, thread_context=False)


# --- documents -----------------------------------------------------------------------------------


def _scope_label(channel: str) -> str:
    return "server-wide" if channel == "*" else f"<#{channel}>"


def _document_line(record) -> str:
    bits = [f"**{document_text(record.name)}**"]
    if record.title and record.title != record.name:
        bits.append(f"— {document_text(record.title)}")
    bits.append(f"· {_scope_label(record.channel)} · {record.chunks} chunks")
    if record.pages:
        bits.append(f"· {record.pages} pages")
    if record.quarantined:
        bits.append("· ⛔ quarantined")
    elif record.flagged:
        bits.append("· ⚠️ flagged")
    return " ".join(bits)


def _upload_message(report, scope_word: str) -> str:
    record = report.record
    name = document_text(record.name)
    where = "for the whole server" if record.channel == "*" else f"for <#{record.channel}>"
    if not report.changed:
        head = f"**{name}** is already up to date {where}; nothing changed."
    elif report.replaced:
        head = f"Replaced **{name}** {where}: {record.chunks} chunks."
    else:
        head = f"Added **{name}** {where}: {record.chunks} chunks."
    if record.quarantined:
        head += "\n⛔ It contains text that looks like instructions to the bot, so it is quarantined: it won't be used in answers."
    elif report.findings:
        head += "\n⚠️ It contains text that looks like instructions to the bot; answers will treat it as data only."
    return head


class DocsCommands(
    app_commands.Group,
    name="docs",
    description="The documents docent answers from",
    guild_only=True,
    default_permissions=discord.Permissions(manage_guild=True),
):
    """/docs upload|list|remove|gaps."""

    @app_commands.command(name="upload", description="Add a document (admins only)")
    @app_commands.describe(
        file="A PDF, DOCX, TXT, Markdown or HTML file",
        scope="Only this channel (default) or the whole server",
    )
    async def upload(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment,
        scope: Literal["channel", "server"] = "channel",
    ) -> None:
        docent, settings = _docent(interaction), _settings(interaction)
        actor = actor_of(interaction, settings)
        if not docent.admin.is_admin(actor):
            await _say(interaction, NOT_ADMIN.format(action="add documents"))
            return
        max_bytes = int(settings.max_file_mb * MB)
        try:
            precheck(file, max_bytes)  # before downloading anything
        except DocumentError as err:
            await _say(interaction, f"⚠️ {document_text(str(err))} — nothing was stored.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        place = place_of(interaction, settings)
        target = Scope.workspace_wide(place.workspace) if scope == "server" else Scope(place.workspace, place.channel)
        try:
            data = await download(file, max_bytes)
            report = await asyncio.to_thread(docent.admin.upload, actor, file.filename, data, target)
        except NotAuthorized as err:
            await _say(interaction, str(err))
        except DocumentError as err:
            await _say(interaction, f"⚠️ {document_text(str(err))} — nothing was stored.")
        except Exception:
            log.exception("upload of %s in %s failed", file.filename, target)
            await _say(interaction, APOLOGY)
        else:
            await _say(interaction, _upload_message(report, scope))

    @app_commands.command(name="list", description="Documents this channel can answer from")
    async def list_(self, interaction: discord.Interaction) -> None:
        docent, settings = _docent(interaction), _settings(interaction)
        place = place_of(interaction, settings)
        await interaction.response.defer(ephemeral=True, thinking=True)
        records = await asyncio.to_thread(docent.admin.list_documents, place.scope, include_workspace=True)
        if not records:
            await _say(interaction, "No documents here yet. An admin can add one with `/docs upload`.")
            return
        values = pack_lines((_document_line(r) for r in records), DESCRIPTION_LIMIT)
        embeds = [
            discord.Embed(title="Documents" if i == 0 else None, description=v, colour=discord.Colour.blurple())
            for i, v in enumerate(values)
        ]
        for batch in group_into_messages(embeds):
            await interaction.followup.send(embeds=batch, ephemeral=True)

    @app_commands.command(name="remove", description="Remove a document (admins only)")
    @app_commands.describe(name="The document's name")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        docent, settings = _docent(interaction), _settings(interaction)
        actor = actor_of(interaction, settings)
        if not docent.admin.is_admin(actor):
            await _say(interaction, NOT_ADMIN.format(action="remove documents"))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        place = place_of(interaction, settings)
        try:
            record = await asyncio.to_thread(docent.admin.remove, actor, place.scope, name)
        except (NotAuthorized, NotFound) as err:
            await _say(interaction, str(err))
        except Exception:
            log.exception("remove of %s in %s failed", name, place.scope)
            await _say(interaction, APOLOGY)
        else:
            await _say(interaction, f"Removed **{document_text(record.name)}** ({_scope_label(record.channel)}).")

    @app_commands.command(name="gaps", description="Questions docent couldn't answer well, grouped (admins only)")
    @app_commands.describe(days="How many days back (default 30)",
                           scope="The whole server (default) or only this channel")
    async def gaps(
        self,
        interaction: discord.Interaction,
        days: app_commands.Range[int, 1, 365] = 30,
        scope: Literal["server", "channel"] = "server",
    ) -> None:
        docent, settings = _docent(interaction), _settings(interaction)
        actor = actor_of(interaction, settings)
        if not docent.admin.is_admin(actor):
            await _say(interaction, NOT_ADMIN.format(action="see coverage gaps"))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        place = place_of(interaction, settings)
        try:
            report = await asyncio.to_thread(docent.admin.gaps, actor, place.workspace, embedder=docent.embedder,
                                             days=days, channel=place.channel if scope == "channel" else None)
        except NotAuthorized as err:
            await _say(interaction, str(err))
            return
        except Exception:
            log.exception("coverage gaps of %s failed", place.workspace)
            await _say(interaction, APOLOGY)
            return
        for batch in group_into_messages(render_gaps(report)):
            await interaction.followup.send(embeds=batch, ephemeral=True)

    @remove.autocomplete("name")
    async def remove_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        docent, settings = _docent(interaction), _settings(interaction)
        place = place_of(interaction, settings)
        names = await asyncio.to_thread(docent.admin.document_names, place.scope, current)
        # Discord caps choices at 25 and a choice's name/value at 100 characters.
        return [app_commands.Choice(name=n, value=n) for n in names if len(n) <= 100][:MAX_AUTOCOMPLETE]


# --- caps ----------------------------------------------------------------------------------------


class CapsCommands(
    app_commands.Group,
    name="caps",
    description="Per-user daily spending caps (admins only)",
    guild_only=True,
    default_permissions=discord.Permissions(manage_guild=True),
):
    """/caps set|clear|list: override DOCENT_USER_DAILY_CAP_USD for one member."""

    async def _admin(self, interaction: discord.Interaction):
        """The acting admin, or None after telling a non-admin no (Discord's default_permissions
        only hides the command; this is the check that counts)."""
        docent, settings = _docent(interaction), _settings(interaction)
        actor = actor_of(interaction, settings)
        if not docent.admin.is_admin(actor):
            await _say(interaction, NOT_ADMIN.format(action="change spending caps"))
            return None
        return actor

    async def _change(self, interaction: discord.Interaction, user: discord.User, amount: float | None) -> None:
        actor = await self._admin(interaction)
        if actor is None:
            return
        default = f"${_settings(interaction).user_daily_cap_usd:,.2f}"
        try:
            await asyncio.to_thread(_docent(interaction).admin.set_user_cap, actor, actor.workspace, str(user.id), amount)
        except (NotAuthorized, InvalidCap) as err:
            await _say(interaction, str(err))
            return
        if amount is None:
            await _say(interaction, f"<@{user.id}> is back to the default cap of {default} a day.")
        else:
            await _say(interaction, f"<@{user.id}> may now spend up to ${amount:,.2f} a day (default {default}).")

    @app_commands.command(name="set", description="Set one member's daily spending cap (admins only)")
    @app_commands.describe(user="Whose cap", amount="US dollars per day (0 stops their questions)")
    async def set_(
        self, interaction: discord.Interaction, user: discord.User, amount: app_commands.Range[float, 0, 1_000_000]
    ) -> None:
        await self._change(interaction, user, round(amount, 6))

    @app_commands.command(name="clear", description="Give a member the default daily cap again (admins only)")
    @app_commands.describe(user="Whose cap")
    async def clear(self, interaction: discord.Interaction, user: discord.User) -> None:
        await self._change(interaction, user, None)

    @app_commands.command(name="list", description="Members with their own daily cap (admins only)")
    async def list_(self, interaction: discord.Interaction) -> None:
        actor = await self._admin(interaction)
        if actor is None:
            return
        caps = await asyncio.to_thread(_docent(interaction).admin.user_caps, actor, actor.workspace)
        default = f"${_settings(interaction).user_daily_cap_usd:,.2f}"
        if not caps:
            await _say(interaction, f"No per-member caps: everyone may spend the default {default} a day.")
            return
        lines = [f"<@{c.user}> — ${c.daily_cap_usd:,.2f} a day" for c in caps]
        for i, value in enumerate(pack_lines(lines, DESCRIPTION_LIMIT)):
            title = f"Daily spending caps (default {default})" if i == 0 else None
            await _say(interaction, None, embed=discord.Embed(title=title, description=value,
                                                              colour=discord.Colour.blurple()))


# --- usage ---------------------------------------------------------------------------------------


@app_commands.command(name="usage", description="Questions and cost: yours, or (admins) anyone's or the server's")
@app_commands.guild_only()
@app_commands.describe(
    user="Whose usage (admins only for someone else; admins without a user see the whole server)",
    days="How many days back (default 30)",
    chart="Attach a chart of requests and cost per day",
)
async def usage_command(
    interaction: discord.Interaction,
    user: discord.User | None = None,
    days: app_commands.Range[int, 1, 365] = 30,
    chart: bool = False,
) -> None:
    docent, settings = _docent(interaction), _settings(interaction)
    actor = actor_of(interaction, settings)
    is_admin = docent.admin.is_admin(actor)
    if user is not None and user.id != interaction.user.id and not is_admin:
        await _say(interaction, NOT_ADMIN.format(action="see other people's usage"))
        return
    who = str(user.id) if user is not None else (None if is_admin else actor.user_id)
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        report = await asyncio.to_thread(docent.admin.usage, actor, actor.workspace, user=who, days=days)
        png = (
            await asyncio.to_thread(docent.admin.usage_chart, actor, actor.workspace, user=who, days=days)
            if chart
            else None
        )
    except NotAuthorized as err:
        await _say(interaction, str(err))
        return
    except Exception:
        log.exception("usage report failed")
        await _say(interaction, APOLOGY)
        return
    title = f"Usage of <@{who}>" if who else "Usage of this server"
    pages = split_text(report.render_text() or "No questions yet.", DESCRIPTION_LIMIT - 20)
    embeds = [discord.Embed(description=f"{title}, last {days} days\n```\n{p}\n```" if i == 0 else f"```\n{p}\n```",
                            colour=discord.Colour.blurple()) for i, p in enumerate(pages)]
    if png:
        embeds[-1].set_image(url="attachment://usage.png")
    batches = group_into_messages(embeds)
    for i, batch in enumerate(batches):
        extra = {"file": discord.File(io.BytesIO(png), filename="usage.png")} if (png and i == len(batches) - 1) else {}
        await interaction.followup.send(embeds=batch, ephemeral=True, **extra)


def register_commands(tree: app_commands.CommandTree) -> None:
    tree.add_command(ask_command)
    tree.add_command(ask_about_message)
    tree.add_command(DocsCommands())
    tree.add_command(usage_command)
    tree.add_command(CapsCommands())

    @tree.error
    async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.NoPrivateMessage):
            await _say(interaction, "That command only works in a server.")
            return
        log.error("command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=error)
        try:
            await _say(interaction, APOLOGY)
        except discord.HTTPException:
            log.debug("could not send the apology", exc_info=True)
