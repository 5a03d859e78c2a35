"""Follow-ups in threads: the "Continue in thread" button and a thread's history as prior turns.

- `/ask` answers in a text channel carry a "Continue in thread" button when the bot may create
  public threads and post in them there (the interaction's `app_permissions`); otherwise no
  button (asking again with `/ask` still works). A click starts a thread on the answer message,
  drops the button from it (one thread per answer) and says how to follow up.
- Follow-ups are answered with the thread's history as context: every message in a thread docent
  started when `DOCENT_DISCORD_THREAD_FOLLOWUPS` is on (that needs the message-content intent),
  and `/ask` inside any thread either way. The history is read over REST: the thread's messages
  plus the message it was started from (which lives in the parent channel). Without the intent
  Discord blanks other people's messages, but docent's own answers keep their embeds — the
  question as the title, the answer as the description — so `/ask` in the thread still sees the
  conversation so far.

Only the asker's messages (and the questions they asked docent) are user turns and only docent's
answers are assistant turns; everyone else is quoted to the model as untrusted data.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable

import discord

from bot.types import PriorTurn
from connectors.discord.feedback import feedback_view

log = logging.getLogger(__name__)

THREAD_HISTORY_MESSAGES = 20  # read per follow-up; the core trims it further to its token budget
THREAD_NAME_LIMIT = 100
THREAD_ALREADY_EXISTS = 160004  # Discord's error code: "A thread has already been created for this message"
_PREFIX = "docent:thread"
INTRO_REPLIES = "Ask your follow-up here — I'll answer every message in this thread, with the thread as context."
INTRO_ASK = "Ask follow-ups here with `/ask` — I'll read this thread for context."
NO_THREAD = ("I couldn't start a thread here (I may lack the Create Public Threads permission). "
             "You can keep asking with `/ask`.")


def can_offer_thread(interaction: discord.Interaction, *, private: bool) -> bool:
    """Whether a public answer to `interaction` may carry "Continue in thread"."""
    perms = interaction.app_permissions
    return (
        not private
        and isinstance(interaction.channel, discord.TextChannel)  # not a thread, DM, voice or forum channel
        and perms.create_public_threads
        and perms.send_messages_in_threads
    )


def thread_name(message: discord.Message | None) -> str:
    title = next((e.title for e in (message.embeds if message else ()) if e.title), None)
    name = " ".join((title or "Follow-up on docent's answer").split())
    return name if len(name) <= THREAD_NAME_LIMIT else name[: THREAD_NAME_LIMIT - 1] + "…"


class ContinueInThreadButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=_PREFIX + r":(?P<request_id>[\w:.\-]{1,80})",
):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="🧵", label="Continue in thread",
                              custom_id=f"{_PREFIX}:{request_id}")
        )
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> "ContinueInThreadButton":
        return cls(match["request_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        message = interaction.message
        if message is None:
            return
        await interaction.response.defer()  # acknowledged; the answer message stays as it is
        try:
            thread = await message.create_thread(name=thread_name(message), auto_archive_duration=1440)
        except discord.HTTPException as err:
            if err.code == THREAD_ALREADY_EXISTS:  # someone clicked first: the thread's id is the message's
                await self._drop_button(interaction)
                await interaction.followup.send(f"This answer already has a thread: <#{message.id}>", ephemeral=True)
            else:
                log.warning("could not start a thread on message %s: %s", message.id, err)
                await interaction.followup.send(NO_THREAD, ephemeral=True)
            return
        await self._drop_button(interaction)
        followups = getattr(interaction.client, "settings", None)
        intro = INTRO_REPLIES if followups is not None and followups.discord_thread_followups else INTRO_ASK
        try:
            await thread.send(intro)
        except discord.HTTPException:
            log.warning("could not post in the new thread %s", thread.id, exc_info=True)

    async def _drop_button(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.edit_original_response(view=feedback_view(self.request_id))
        except discord.HTTPException:  # cosmetic: a second click is answered with the thread's link
            log.debug("could not remove the thread button", exc_info=True)


def answer_view(request_id: str | None, *, offer_thread: bool) -> discord.ui.View | None:
    """The buttons under an answer: 👍 👎, and "Continue in thread" when offered."""
    view = feedback_view(request_id)
    if view is not None and offer_thread:
        view.add_item(ContinueInThreadButton(request_id))  # type: ignore[arg-type]
    return view


# --- history -----------------------------------------------------------------------------------


def is_docent_thread(channel: object, bot_id: int) -> bool:
    return isinstance(channel, discord.Thread) and channel.owner_id == bot_id


def _quoted_author(user: discord.abc.User) -> str:
    """Someone else's name, never one of the prompt's own roles."""
    name = user.display_name or user.name or "someone"
    if user.bot:
        return f"{name} (app)"
    return f"{name} ({user.id})" if name.casefold() in ("user", "assistant") else name


def _answer_text(message: discord.Message) -> str:
    """What docent answered in one of its messages: the embeds' text without notices ("-# …")."""
    parts = []
    for embed in message.embeds:
        if embed.footer and embed.footer.text == "writing…":  # a progress edit, never the answer
            continue
        lines = [line for line in (embed.description or "").splitlines() if not line.startswith("-# ")]
        text = "\n".join(lines).strip()
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def _without_mentions_of(text: str, bot_id: int) -> str:
    for form in (f"<@{bot_id}>", f"<@!{bot_id}>"):
        text = text.replace(form, " ")
    return " ".join(text.split())


def turns_of(messages: Iterable[discord.Message], *, asker_id: int, bot_id: int,
             exclude_id: int | None = None) -> tuple[PriorTurn, ...]:
    """Messages in thread order as prior turns (see the module docstring for who is who)."""
    turns: list[PriorTurn] = []
    for m in messages:
        if m.id == exclude_id:
            continue
        if m.author.id == bot_id:
            answer = _answer_text(m)
            if not answer:  # docent's notices (the thread intro, apologies) are no part of the talk
                continue
            asked = m.interaction_metadata.user if m.interaction_metadata is not None else None
            title = next((e.title for e in m.embeds if e.title), None)
            if asked is not None and title:  # an interaction's answer: its title is the question asked
                turns.append(PriorTurn("user" if asked.id == asker_id else _quoted_author(asked), title,
                                       to_docent=True))
            turns.append(PriorTurn("assistant", answer, is_bot=True))
        else:
            text = _without_mentions_of(m.content or "", bot_id)
            if text:  # without the message-content intent other people's messages arrive blank
                author = "user" if m.author.id == asker_id and not m.author.bot else _quoted_author(m.author)
                mentioned = any(f"<@{form}{bot_id}>" in (m.content or "") for form in ("", "!"))
                turns.append(PriorTurn(author, text, to_docent=mentioned))
    return tuple(turns)


async def thread_history(thread: discord.Thread, client: discord.Client, *, asker_id: int,
                         exclude_id: int | None = None) -> tuple[PriorTurn, ...]:
    """The thread so far as prior turns (REST: its messages, then the message it started from)."""
    assert client.user is not None
    try:
        messages = [m async for m in thread.history(limit=THREAD_HISTORY_MESSAGES)][::-1]  # oldest first
        if thread.parent_id and not any(m.id == thread.id for m in messages):
            try:  # a thread started from a message has that message's id; it sits in the parent
                messages.insert(0, await client.get_partial_messageable(thread.parent_id).fetch_message(thread.id))
            except discord.NotFound:
                pass  # a thread started on its own
    except discord.HTTPException as err:  # no history beats no answer
        log.warning("could not read thread %s: %s", thread.id, err)
        return ()
    return turns_of(messages, asker_id=asker_id, bot_id=client.user.id, exclude_id=exclude_id)
