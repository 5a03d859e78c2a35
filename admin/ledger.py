"""The usage & cost ledger: one row per request plus per-user daily totals, kept equal by construction.

`record()` inserts the request row and adds it to its (day, workspace, user) total in ONE
transaction, with `INSERT … ON CONFLICT` on both (SQLite and Postgres speak it), so concurrent
writers from several processes neither lose an increment nor count a redelivered request twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from admin.db import Database
from admin.models import DailyUserTotal, RequestRecord, from_micro, to_micro

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerEntry:
    """What the bot knows about one finished request. `question` is already redacted or hashed."""

    request_id: str
    platform: str
    workspace: str
    channel: str | None
    user: str
    outcome: str
    question: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    ts: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def day(self) -> date:
        ts = self.ts if self.ts.tzinfo else self.ts.replace(tzinfo=timezone.utc)
        return ts.astimezone(timezone.utc).date()


@dataclass(frozen=True)
class LedgerTotals:
    requests: int
    input_tokens: int
    output_tokens: int
    cost_microusd: int

    @property
    def cost_usd(self) -> float:
        return from_micro(self.cost_microusd)


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table):
        dialect = self.db.dialect
        if dialect == "postgresql":
            return postgresql.insert(table)
        if dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"the ledger supports SQLite and Postgres, not {dialect}")

    def record(self, entry: LedgerEntry) -> bool:
        """Store one request. Idempotent on `request_id`; returns False when it was already stored."""
        micro = to_micro(entry.cost_usd)
        ts = entry.ts if entry.ts.tzinfo else entry.ts.replace(tzinfo=timezone.utc)
        row = dict(
            request_id=entry.request_id, ts=ts, day=entry.day, platform=entry.platform,
            workspace=entry.workspace, channel=entry.channel, user=entry.user,
            question=entry.question, model=entry.model, input_tokens=int(entry.input_tokens),
            output_tokens=int(entry.output_tokens), cost_microusd=micro,
            latency_ms=float(entry.latency_ms), cache_hit=bool(entry.cache_hit), outcome=str(entry.outcome),
        )
        req_table = RequestRecord.__table__
        tot_table = DailyUserTotal.__table__
        with self.db.session() as session:
            stmt = (
                self._insert(req_table).values(**row)
                .on_conflict_do_nothing(index_elements=["request_id"])
                .returning(req_table.c.id)
            )
            inserted = session.execute(stmt).first()
            if inserted is None:
                log.info("ledger: request %s already recorded", entry.request_id)
                return False
            ins = self._insert(tot_table).values(
                day=entry.day, workspace=entry.workspace, user=entry.user, requests=1,
                input_tokens=row["input_tokens"], output_tokens=row["output_tokens"], cost_microusd=micro,
            )
            ins = ins.on_conflict_do_update(
                index_elements=["day", "workspace", "user"],
                set_=dict(
                    requests=tot_table.c.requests + 1,
                    input_tokens=tot_table.c.input_tokens + ins.excluded.input_tokens,
                    output_tokens=tot_table.c.output_tokens + ins.excluded.output_tokens,
                    cost_microusd=tot_table.c.cost_microusd + ins.excluded.cost_microusd,
                ),
            )
            session.execute(ins)
        return True

    def totals(
        self,
        workspace: str | None = None,
        *,
        user: str | None = None,
        channel: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> LedgerTotals:
        """Sums over the request rows (the source of truth) matching every given filter."""
        t = RequestRecord.__table__.c
        q = select(
            func.count(t.id), func.coalesce(func.sum(t.input_tokens), 0),
            func.coalesce(func.sum(t.output_tokens), 0), func.coalesce(func.sum(t.cost_microusd), 0),
        )
        for col, value in ((t.workspace, workspace), (t.user, user), (t.channel, channel)):
            if value is not None:
                q = q.where(col == value)
        if since is not None:
            q = q.where(t.day >= since)
        if until is not None:
            q = q.where(t.day <= until)
        with self.db.session() as session:
            n, i, o, c = session.execute(q).one()
        return LedgerTotals(int(n), int(i), int(o), int(c))

    def daily_totals(self, workspace: str | None = None, *, user: str | None = None,
                     day: date | None = None) -> LedgerTotals:
        """Sums over the per-user daily totals table (kept equal to `totals()` by `record()`)."""
        t = DailyUserTotal.__table__.c
        q = select(
            func.coalesce(func.sum(t.requests), 0), func.coalesce(func.sum(t.input_tokens), 0),
            func.coalesce(func.sum(t.output_tokens), 0), func.coalesce(func.sum(t.cost_microusd), 0),
        )
        if workspace is not None:
            q = q.where(t.workspace == workspace)
        if user is not None:
            q = q.where(t.user == user)
        if day is not None:
            q = q.where(t.day == day)
        with self.db.session() as session:
            n, i, o, c = session.execute(q).one()
        return LedgerTotals(int(n), int(i), int(o), int(c))

    def spent_today_microusd(self, workspace: str, user: str | None = None, *, day: date | None = None) -> int:
        day = day or datetime.now(timezone.utc).date()
        return self.daily_totals(workspace, user=user, day=day).cost_microusd

    def spent_today(self, workspace: str, user: str | None = None) -> float:
        return from_micro(self.spent_today_microusd(workspace, user))
