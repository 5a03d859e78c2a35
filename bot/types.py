"""The platform-free request and response every connector speaks, and the errors users can cause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from knowledge.followups import thread_question_indices
from knowledge.types import Scope


@dataclass(frozen=True)
class PriorTurn:
    """One earlier message of the conversation (a thread). Others' messages are untrusted data."""

    author: str  # "user", "assistant" or a display name
    text: str
    is_bot: bool = False
    # Put to docent: it @mentioned docent, or it is a slash command's question. Says which of
    # the messages before a reply docent answered (knowledge.followups.thread_question_indices).
    to_docent: bool = False

    @property
    def role(self) -> str:
        """"assistant" for docent, "user" for the asker, anyone else's name (quoted as data)."""
        if self.is_bot or self.author == "assistant":
            return "assistant"
        return self.author or "someone"


def thread_question_positions(history: Sequence[PriorTurn]) -> list[int]:
    """Where the thread's questions stand in `history` (`followups.thread_question_indices`)."""
    return thread_question_indices([(t.role, t.text) for t in history], [t.to_docent for t in history])


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int
    mimetype: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Question:
    platform: str  # "slack", "discord", "cli", "console"
    workspace: str  # Slack team id, Discord guild id, "local" for the CLI
    channel: str | None  # None for a DM
    user: str
    text: str
    thread: str | None = None
    history: tuple[PriorTurn, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    request_id: str | None = None  # e.g. Slack event_id / Discord interaction id

    @property
    def scope(self) -> Scope:
        return Scope(self.workspace, self.channel)


class Outcome(StrEnum):
    answered = "answered"
    abstained = "abstained"
    rate_limited = "rate_limited"
    capped = "capped"
    blocked = "blocked"
    error = "error"


@dataclass(frozen=True)
class Source:
    """A numbered citation target: `[n]` in the answer text is `sources[n-1]`."""

    n: int
    doc_id: str
    title: str
    source: str
    page: int | None
    section: str
    snippet: str
    url: str | None = None

    @property
    def label(self) -> str:
        where = []
        if self.page is not None:
            where.append(f"p. {self.page}")
        if self.section:
            where.append(self.section)
        return f"{self.title}" + (f" ({', '.join(where)})" if where else "")


@dataclass(frozen=True)
class Usage:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False


@dataclass(frozen=True)
class Answer:
    text: str  # Markdown with inline [n] citations
    sources: tuple[Source, ...]
    outcome: Outcome
    usage: Usage
    notices: tuple[str, ...] = ()  # e.g. "Claude was unavailable; this is an extractive answer."
    request_id: str | None = None
    retry_after_s: float | None = None  # set when rate limited
    answerability: float | None = None  # the gate's score, when the question reached it
    related: tuple[Source, ...] = ()  # on an abstention: the closest passages, offered as "related"
    extra: dict = field(default_factory=dict, compare=False)


class DocentError(Exception):
    """An error a user can cause; `str(err)` is a friendly message for that user."""


class RateLimited(DocentError):
    def __init__(self, retry_after_s: float, what: str = "you"):
        self.retry_after_s = retry_after_s
        super().__init__(
            f"Too many questions from {what} right now — please try again in {max(1, round(retry_after_s))} s."
        )


class BudgetExceeded(DocentError):
    def __init__(self, who: str = "your", detail: str = ""):
        super().__init__(
            f"The daily spending cap for {who} questions has been reached{detail}. It resets at 00:00 UTC."
        )


class InjectionBlocked(DocentError):
    def __init__(self) -> None:
        super().__init__(
            "That question looks like an attempt to override docent's instructions, so it wasn't sent to the model."
        )


class ServiceUnavailable(DocentError):
    pass
