"""The usage & cost ledger: one row per request plus per-user daily totals, kept equal by construction.

`record()` inserts the request row and adds it to its (day, workspace, user) total in ONE
transaction, with `INSERT … ON CONFLICT` on both (SQLite and Postgres speak it), so concurrent
writers from several processes neither lose an increment nor count a redelivered request twice.

A request about to spend money is first recorded as `pending` with its reserved worst-case cost
(counted in the totals at once, so caps see it); its final `record()` settles that row to the
actual figures. A pending row whose process died is marked interrupted by `sweep_pending` and
keeps the worst case: the call may have been billed, and a lost cost would let spending pass a cap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select, update
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
    PENDING = "pending"  # the outcome of a request whose model call is under way
    INTERRUPTED = "error"  # what a swept pending row becomes
    INTERRUPTED_MODEL = "interrupted"

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
        """Store one request, or settle its pending row. Idempotent on `request_id`: returns False
        when the request was already recorded (and not pending)."""
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
        with self.db.session() as session:
            stmt = (
                self._insert(req_table).values(**row)
                .on_conflict_do_nothing(index_elements=["request_id"])
                .returning(req_table.c.id)
            )
            if session.execute(stmt).first() is not None:
                self._add_to_totals(session, entry.day, entry.workspace, entry.user, 1,
                                    row["input_tokens"], row["output_tokens"], micro)
                return True
            if entry.outcome == self.PENDING:
                return False
            return self._settle_pending(session, row)

    def _settle_pending(self, session, row: dict) -> bool:
        """Turn the pending row of `row["request_id"]` into `row`; its totals move by the difference."""
        t = RequestRecord.__table__.c
        old = session.execute(
            select(t.day, t.workspace, t.user, t.input_tokens, t.output_tokens, t.cost_microusd)
            .where(t.request_id == row["request_id"], t.outcome == self.PENDING)
        ).first()
        if old is None:
            log.info("ledger: request %s already recorded", row["request_id"])
            return False
        changes = {k: v for k, v in row.items() if k not in ("request_id", "ts", "day", "workspace", "user")}
        done = session.execute(
            update(RequestRecord.__table__)
            .where(t.request_id == row["request_id"], t.outcome == self.PENDING)
            .values(**changes)
        )
        if done.rowcount != 1:  # another writer settled it first
            return False
        self._add_to_totals(
            session, old.day, old.workspace, old.user, 0, row["input_tokens"] - old.input_tokens,
            row["output_tokens"] - old.output_tokens, row["cost_microusd"] - old.cost_microusd,
        )
        return True

    def _add_to_totals(self, session, day: date, workspace: str, user: str, requests: int,
                       input_tokens: int, output_tokens: int, cost_microusd: int) -> None:
        tot_table = DailyUserTotal.__table__
        ins = self._insert(tot_table).values(
            day=day, workspace=workspace, user=user, requests=requests,
            input_tokens=input_tokens, output_tokens=output_tokens, cost_microusd=cost_microusd,
        )
        ins = ins.on_conflict_do_update(
            index_elements=["day", "workspace", "user"],
            set_=dict(
                requests=tot_table.c.requests + ins.excluded.requests,
                input_tokens=tot_table.c.input_tokens + ins.excluded.input_tokens,
                output_tokens=tot_table.c.output_tokens + ins.excluded.output_tokens,
                cost_microusd=tot_table.c.cost_microusd + ins.excluded.cost_microusd,
            ),
        )
        session.execute(ins)

    def sweep_pending(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Mark pending rows older than `older_than` as interrupted; their cost stays charged."""
        cutoff = (now or datetime.now(timezone.utc)) - older_than
        t = RequestRecord.__table__.c
        with self.db.session() as session:
            done = session.execute(
                update(RequestRecord.__table__)
                .where(t.outcome == self.PENDING, t.ts < cutoff)
                .values(outcome=self.INTERRUPTED, model=self.INTERRUPTED_MODEL)
            )
            return int(done.rowcount or 0)

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
