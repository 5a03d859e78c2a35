"""Durable record of platform events already handled, so a redelivered event is answered once.

A row per claimed key; the primary key makes the INSERT of a second claim fail, in SQLite and
Postgres alike, across processes and restarts. (With Redis configured, bot/dedupe.py uses
`SET NX EX` instead and this table stays empty.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"

    key: str = Field(primary_key=True, max_length=255)
    created_at: datetime = Field(default_factory=_utcnow, index=True)


def _engine(engine_or_db) -> Engine:
    # Accept admin.db.Database (has .engine) or a bare SQLAlchemy Engine.
    return getattr(engine_or_db, "engine", engine_or_db)


def claim(engine_or_db, key: str) -> bool:
    """True for the first caller with this key, False for every later one (any process)."""
    try:
        with _engine(engine_or_db).begin() as conn:
            conn.execute(insert(ProcessedEvent.__table__).values(key=key[:255], created_at=_utcnow()))
        return True
    except IntegrityError:
        return False


def purge_older_than(engine_or_db, age: timedelta) -> int:
    """Forget claims older than `age` (redeliveries stop long before); returns rows removed."""
    cutoff = _utcnow() - age
    with _engine(engine_or_db).begin() as conn:
        result = conn.execute(delete(ProcessedEvent.__table__).where(ProcessedEvent.__table__.c.created_at < cutoff))
    return result.rowcount or 0


def ensure_table(engine_or_db) -> None:
    """Create just this table if missing (tests, and databases migrated before it existed)."""
    ProcessedEvent.__table__.create(_engine(engine_or_db), checkfirst=True)
