"""SQLModel tables: the usage & cost ledger, per-user daily totals, the document registry,
channel links, feedback, per-user cap overrides and the scope generations the cache keys use.

Money is stored as integer micro-dollars (`*_microusd`): sums of integers are exact, so totals
equal the sum of request rows to the cent, on SQLite and Postgres alike.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import BigInteger, Column, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

MICRO = 1_000_000


def to_micro(usd: float | Decimal) -> int:
    """USD → integer micro-dollars, through the decimal text so 0.1 stays 100000, not 99999."""
    return int((Decimal(str(usd)) * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micro(micro: int) -> float:
    return micro / MICRO


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RequestRecord(SQLModel, table=True):
    """One row per request, whatever its outcome (answered … error)."""

    __tablename__ = "request_record"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(sa_column=Column(String(128), unique=True, nullable=False))
    ts: datetime = Field(default_factory=utcnow, index=True)
    day: date = Field(index=True)
    platform: str = Field(max_length=32)
    workspace: str = Field(max_length=128, index=True)
    channel: str | None = Field(default=None, max_length=128, index=True)
    user: str = Field(max_length=128, index=True)
    question: str = Field(default="", sa_column=Column(Text, nullable=False))
    model: str = Field(default="", max_length=128)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_microusd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    latency_ms: float = 0.0
    cache_hit: bool = False
    outcome: str = Field(max_length=32, index=True)

    @property
    def cost_usd(self) -> float:
        return from_micro(self.cost_microusd)


class DailyUserTotal(SQLModel, table=True):
    """Running totals per (day, workspace, user), written in the same transaction as each request row."""

    __tablename__ = "daily_user_total"
    __table_args__ = (UniqueConstraint("day", "workspace", "user", name="uq_daily_user_total"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)
    workspace: str = Field(max_length=128)
    user: str = Field(max_length=128)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_microusd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))

    @property
    def cost_usd(self) -> float:
        return from_micro(self.cost_microusd)


class Document(SQLModel, table=True):
    """The registry of every document an admin added, searchable or quarantined."""

    __tablename__ = "document"

    doc_id: str = Field(primary_key=True, max_length=64)
    workspace: str = Field(max_length=128, index=True)
    channel: str = Field(max_length=128)  # '*' = workspace-wide
    name: str = Field(max_length=512)
    title: str = Field(max_length=512)
    pages: int | None = None
    chunks: int = 0
    size_bytes: int = 0
    content_hash: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=128)
    uploaded_at: datetime = Field(default_factory=utcnow)
    flagged: bool = False
    flag_reasons: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    quarantined: bool = False
    url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The store version this row describes (live in the store unless quarantined); a row is only
    # ever replaced by one with a higher version (see admin.registry).
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class DocumentVersion(SQLModel, table=True):
    """The version counter of each document id, shared by every process on this database.

    Never deleted with the document: a document removed and uploaded again keeps counting up, so
    its new version is newer than anything of the old one still in a store.
    """

    __tablename__ = "document_version"

    doc_id: str = Field(primary_key=True, max_length=64)
    last_version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class ChannelLink(SQLModel, table=True):
    """Which channels a document answers in (its own scope today; more links later)."""

    __tablename__ = "channel_link"
    __table_args__ = (UniqueConstraint("doc_id", "workspace", "channel", name="uq_channel_link"),)

    id: int | None = Field(default=None, primary_key=True)
    doc_id: str = Field(
        sa_column=Column(String(64), ForeignKey("document.doc_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    workspace: str = Field(max_length=128)
    channel: str = Field(max_length=128)
    linked_at: datetime = Field(default_factory=utcnow)


class Feedback(SQLModel, table=True):
    """👍/👎 on an answer; a second click by the same user updates the first.

    `comment` is what the user said was wrong with a 👎 (already PII-redacted by the connector);
    a later 👍 clears it."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("request_id", "user", name="uq_feedback"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=128, index=True)
    user: str = Field(max_length=128)
    helpful: bool
    ts: datetime = Field(default_factory=utcnow)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class UserCap(SQLModel, table=True):
    """An admin's per-user override of the daily cost cap."""

    __tablename__ = "user_cap"

    workspace: str = Field(primary_key=True, max_length=128)
    user: str = Field(primary_key=True, max_length=128)
    daily_cap_microusd: int = Field(sa_column=Column(BigInteger, nullable=False))
    set_by: str = Field(default="", max_length=128)
    set_at: datetime = Field(default_factory=utcnow)

    @property
    def daily_cap_usd(self) -> float:
        return from_micro(self.daily_cap_microusd)


class ScopeGeneration(SQLModel, table=True):
    """A counter per (workspace, channel) bumped on every document change there.

    Response-cache keys include the generations of the asker's channel and of the workspace-wide
    scope, so any upload/replace/remove makes the old entries unreachable in every process.
    """

    __tablename__ = "scope_generation"

    workspace: str = Field(primary_key=True, max_length=128)
    channel: str = Field(primary_key=True, max_length=128)
    generation: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    changed_at: datetime = Field(default_factory=utcnow)


class ChannelSetting(SQLModel, table=True):
    """An admin's settings for one channel: auto-answer (help channels) and who to ask instead.

    `experts` is the platform's own reference to a person or group (Slack `U…`/`W…` or `S…`),
    validated by the connector that set it; docent builds the mention from it itself.
    """

    __tablename__ = "channel_setting"

    platform: str = Field(primary_key=True, max_length=32)
    workspace: str = Field(primary_key=True, max_length=128)
    channel: str = Field(primary_key=True, max_length=128)
    autoanswer: bool = False
    experts: str | None = Field(default=None, max_length=64)
    updated_by: str = Field(default="", max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)
