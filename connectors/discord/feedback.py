"""👍/👎 buttons under an answer whose clicks are stored, surviving bot restarts; 👎 asks what was wrong.

Each button's custom_id carries the answer's request id (`docent:fb:up:<request id>`).
`discord.ui.DynamicItem` matches clicks by that template, so a click on an answer sent before
a restart still reaches `record_feedback` without the bot remembering any view.

👎 answers the click with a modal ("What was wrong?", optional) and records the vote at once, so
it counts even when the modal is dismissed; a submitted comment is PII-redacted and stored with
the vote. The modal lives in this process only: one submitted after a restart fails on Discord's
side, with the 👎 already saved. If Discord refuses the modal, the click is recorded and thanked
as before comments existed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

from bot.guards.pii import redact

log = logging.getLogger(__name__)

CUSTOM_ID_LIMIT = 100
COMMENT_LIMIT = 1000
MODAL_TIMEOUT_S = 15 * 60  # then the modal's handler is dropped (Discord has no "dismissed" event)
_PREFIX = "docent:fb"
THANKS_UP = "Thanks — noted."
THANKS_DOWN = "Thanks — noted. An admin can review unhelpful answers."
NOT_SAVED = "Sorry — I couldn't save that feedback."


async def _record(interaction: discord.Interaction, request_id: str, helpful: bool, comment: str | None = None) -> bool:
    docent = getattr(interaction.client, "docent", None)
    if docent is None:  # a client that isn't docent's: nothing to record into
        return False
    try:
        await asyncio.to_thread(docent.admin.record_feedback, request_id, str(interaction.user.id), helpful, comment)
    except Exception:
        log.exception("could not record feedback for %s", request_id)
        return False
    return True


class WhatWasWrong(discord.ui.Modal, title="What was wrong with this answer?"):
    """The 👎 modal; its custom id is the click's interaction id, so two voters never share one."""

    def __init__(self, request_id: str, click_id: int) -> None:
        super().__init__(timeout=MODAL_TIMEOUT_S, custom_id=f"{_PREFIX}:why:{click_id}")
        self.request_id = request_id
        self.comment = discord.ui.TextInput(
            custom_id="comment", style=discord.TextStyle.paragraph, required=False, max_length=COMMENT_LIMIT,
            placeholder="e.g. it cited last year's policy; the answer is in the onboarding guide",
        )
        self.add_item(discord.ui.Label(
            text="What was wrong? (optional)", description="Admins read these to choose which documents to add.",
            component=self.comment,
        ))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        comment = redact(self.comment.value or "").strip() or None
        saved = await _record(interaction, self.request_id, False, comment)
        await interaction.response.send_message(THANKS_DOWN if saved else NOT_SAVED, ephemeral=True)


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=_PREFIX + r":(?P<vote>up|down):(?P<request_id>[\w:.\-]{1,80})",
):
    def __init__(self, request_id: str, helpful: bool) -> None:
        vote = "up" if helpful else "down"
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if helpful else "👎",
                custom_id=f"{_PREFIX}:{vote}:{request_id}",
            )
        )
        self.request_id = request_id
        self.helpful = helpful

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> "FeedbackButton":
        return cls(match["request_id"], match["vote"] == "up")

    async def callback(self, interaction: discord.Interaction) -> None:
        if getattr(interaction.client, "docent", None) is None:
            return
        if not self.helpful:
            try:
                # The modal must be the click's first response (within 3 s): before any database write.
                await interaction.response.send_modal(WhatWasWrong(self.request_id, interaction.id))
            except discord.HTTPException as err:
                log.warning("Discord refused the feedback modal (%s); recording the 👎 alone", err)
            else:
                await _record(interaction, self.request_id, False)
                return
        saved = await _record(interaction, self.request_id, self.helpful)
        thanks = THANKS_UP if self.helpful else THANKS_DOWN
        await interaction.response.send_message(thanks if saved else NOT_SAVED, ephemeral=True)


def feedback_view(request_id: str | None) -> discord.ui.View | None:
    """The two buttons for one answer, or None when the answer has no ledger id to attach them to."""
    if not request_id or not re.fullmatch(r"[\w:.\-]{1,80}", request_id):
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(request_id, True))
    view.add_item(FeedbackButton(request_id, False))
    return view
