"""A question (or a `learn` command) as Slack delivered it."""

from __future__ import annotations

import re
from dataclasses import dataclass

LEARN = re.compile(r"^\s*learn\b(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
EVERYWHERE = re.compile(r"(?:^|\s)(?:--everywhere|everywhere|--workspace|workspace-wide)(?:\s|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Asking:
    """One question as Slack delivered it, before it becomes a `Question`."""

    team: str
    channel: str
    is_dm: bool
    user: str
    text: str
    ts: str
    thread_ts: str | None
    event_id: str
    files: tuple[dict, ...] = ()
    # An assistant thread (a DM) answers from the channel the user was viewing when they opened it.
    context_channel: str | None = None
    assistant: bool = False

    @property
    def reply_thread(self) -> str | None:
        # Channels: always answer in a thread. DMs: thread only if the asker used one.
        if self.is_dm:
            return self.thread_ts
        return self.thread_ts or self.ts


def learn_options(asking: Asking) -> str | None:
    """The options of a `learn` command, or None when the message is a question.

    "learn" with a file, or a bare "learn [--everywhere]", is the admin command; a question that
    merely starts with the word ("learn more about our leave policy?") is a question.
    """
    match = LEARN.match(asking.text)
    if not match:
        return None
    rest = match.group("rest")
    if asking.files or not EVERYWHERE.sub(" ", " " + rest + " ").strip():
        return rest
    return None
