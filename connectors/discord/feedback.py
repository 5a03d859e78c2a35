"""👍/👎 buttons under an answer whose clicks are stored, surviving bot restarts.

Each button's custom_id carries the answer's request id (`docent:fb:up:<request id>`).
`discord.ui.DynamicItem` matches clicks by that template, so a click on an answer sent before
a restart still reaches `record_feedback` without the bot remembering any view.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

log = logging.getLogger(__name__)

CUSTOM_ID_LIMIT = 100
_PREFIX = "docent:fb"


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
        docent = getattr(interaction.client, "docent", None)
        if docent is None:  # a client that isn't docent's: nothing to record into
            return
        try:
            await asyncio.to_thread(
                docent.admin.record_feedback, self.request_id, str(interaction.user.id), self.helpful
            )
        except Exception:
            log.exception("could not record feedback for %s", self.request_id)
            await interaction.response.send_message("Sorry — I couldn't save that feedback.", ephemeral=True)
            return
        await interaction.response.send_message(
            "Thanks — noted." if self.helpful else "Thanks — noted. An admin can review unhelpful answers.",
            ephemeral=True,
        )


def feedback_view(request_id: str | None) -> discord.ui.View | None:
    """The two buttons for one answer, or None when the answer has no ledger id to attach them to."""
    if not request_id or not re.fullmatch(r"[\w:.\-]{1,80}", request_id):
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(request_id, True))
    view.add_item(FeedbackButton(request_id, False))
    return view
