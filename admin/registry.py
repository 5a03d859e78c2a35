"""Durable admin records: the document registry with its channel links, scope generations,
per-user cap overrides and answer feedback. Small SQL helpers the admin operations, the budget
guard and the response cache share; no authorization here (that lives in `admin.operations`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from admin.db import Database
from admin.models import ChannelLink, Document, DocumentVersion, Feedback, ScopeGeneration, UserCap, to_micro
from knowledge.types import WORKSPACE_WIDE, Scope


def _upsert(db: Database, table):
    return (postgresql if db.dialect == "postgresql" else sqlite).insert(table)


class DocumentRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- documents ------------------------------------------------------------------------
    def allocate_version(self, doc_id: str, at_least: int = 1) -> int:
        """The next version number of `doc_id`: unique and increasing across every process on
        this database, and at least `at_least` (the store's own high-water mark, in case the
        database is younger than the store)."""
        t = DocumentVersion.__table__
        stmt = _upsert(self.db, t).values(doc_id=doc_id, last_version=at_least)
        bumped = t.c.last_version + 1
        stmt = stmt.on_conflict_do_update(
            index_elements=["doc_id"],
            set_=dict(last_version=case((bumped > stmt.excluded.last_version, bumped),
                                        else_=stmt.excluded.last_version)),
        ).returning(t.c.last_version)
        with self.db.session() as session:
            return int(session.execute(stmt).scalar_one())

    @contextmanager
    def locked(self, doc_id: str) -> Iterator[LockedDocument]:
        """Hold `doc_id`'s counter row until the block ends (a row lock on Postgres, the write
        lock on SQLite); what is written through the `LockedDocument` commits at the end, and
        nothing of it if the block raises. Publishing a version (store flip + registry row) and
        reconciling a document both run inside it, so neither ever sees the other half-done.
        Inside the block, write to the database only through the `LockedDocument`."""
        t = DocumentVersion.__table__
        stmt = _upsert(self.db, t).values(doc_id=doc_id, last_version=0)
        # A write that changes nothing, to take the lock (and create the counter row if needed).
        stmt = stmt.on_conflict_do_update(
            index_elements=["doc_id"], set_=dict(last_version=t.c.last_version)
        ).returning(t.c.last_version)
        with self.db.session() as session:
            last_version = int(session.execute(stmt).scalar_one())
            yield LockedDocument(self, session, doc_id, last_version)

    def get(self, doc_id: str) -> Document | None:
        with self.db.session() as session:
            return session.get(Document, doc_id)

    def in_scope(self, scope: Scope, *, include_workspace: bool = True) -> list[Document]:
        """Documents linked to the scope's channel (plus workspace-wide ones when asked)."""
        channels = set(scope.visible_channels) if include_workspace else {scope.storage_channel}
        q = (
            select(Document)
            .join(ChannelLink, ChannelLink.doc_id == Document.doc_id)
            .where(ChannelLink.workspace == scope.workspace, ChannelLink.channel.in_(channels))
            .order_by(func.lower(Document.name), Document.doc_id)
        )
        with self.db.session() as session:
            seen: dict[str, Document] = {}
            for doc in session.execute(q).scalars():
                seen.setdefault(doc.doc_id, doc)
            return list(seen.values())

    # --- scope generations (response-cache invalidation) -----------------------------------
    def _bump(self, session, scope: Scope) -> None:
        t = ScopeGeneration.__table__
        stmt = _upsert(self.db, t).values(
            workspace=scope.workspace, channel=scope.storage_channel, generation=1,
            changed_at=datetime.now(timezone.utc),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["workspace", "channel"],
            set_=dict(generation=t.c.generation + 1, changed_at=stmt.excluded.changed_at),
        )
        session.execute(stmt)

    def bump_generation(self, scope: Scope) -> None:
        """Mark every document view of `scope` as changed (workspace-wide → every channel's view)."""
        with self.db.session() as session:
            self._bump(session, scope)

    def generation(self, scope: Scope) -> str:
        """A token that changes whenever any document visible from `scope` changes — and when any
        other document of the workspace does: an answer also depends on those, since the
        answerability score weighs how much closer another channel's documents come
        (`ChunkStore.best_elsewhere`)."""
        t = ScopeGeneration.__table__.c
        with self.db.session() as session:
            rows = dict(session.execute(select(t.channel, t.generation).where(t.workspace == scope.workspace)).all())
        visible = ".".join(str(rows.get(ch, 0)) for ch in scope.visible_channels)
        return f"{visible}/{sum(rows.values())}"

    # --- per-user cap overrides -----------------------------------------------------------
    def user_cap_microusd(self, workspace: str, user: str) -> int | None:
        with self.db.session() as session:
            cap = session.get(UserCap, (workspace, user))
            return None if cap is None else cap.daily_cap_microusd

    def set_user_cap(self, workspace: str, user: str, daily_cap_usd: float | None, *, set_by: str = "") -> None:
        with self.db.session() as session:
            cap = session.get(UserCap, (workspace, user))
            if daily_cap_usd is None:
                if cap is not None:
                    session.delete(cap)
                return
            micro = to_micro(daily_cap_usd)
            if cap is None:
                session.add(UserCap(workspace=workspace, user=user, daily_cap_microusd=micro, set_by=set_by))
            else:
                cap.daily_cap_microusd = micro
                cap.set_by = set_by
                cap.set_at = datetime.now(timezone.utc)

    # --- feedback -------------------------------------------------------------------------
    def record_feedback(self, request_id: str, user: str, helpful: bool, comment: str | None = None, *,
                        at: datetime | None = None) -> None:
        """The user's latest vote on one answer (with `at`, when they clicked: an older click than
        the one stored is ignored, so the latest counts whatever order two arrive in). A 👍 clears
        an earlier comment (it no longer applies); a 👎 without a comment keeps the one given with
        an earlier 👎."""
        t = Feedback.__table__
        comment = (comment or "").strip() or None
        stmt = _upsert(self.db, t).values(
            request_id=request_id, user=user, helpful=helpful, ts=at or datetime.now(timezone.utc),
            comment=None if helpful else comment,
        )
        kept = None if helpful else func.coalesce(stmt.excluded.comment, t.c.comment)
        stmt = stmt.on_conflict_do_update(
            index_elements=["request_id", "user"],
            set_=dict(helpful=stmt.excluded.helpful, ts=stmt.excluded.ts, comment=kept),
            # The latest click wins, whatever order two clicks are processed in.
            where=t.c.ts <= stmt.excluded.ts,
        )
        with self.db.session() as session:
            session.execute(stmt)

    def feedback(self, request_id: str) -> dict[str, bool]:
        with self.db.session() as session:
            rows = session.execute(select(Feedback.user, Feedback.helpful).where(Feedback.request_id == request_id))
            return {user: helpful for user, helpful in rows}

    def feedback_comments(self, request_id: str) -> dict[str, str]:
        """user → their comment on one answer, for the votes that carry one."""
        with self.db.session() as session:
            rows = session.execute(select(Feedback.user, Feedback.comment)
                                   .where(Feedback.request_id == request_id, Feedback.comment.is_not(None)))
            return {user: comment for user, comment in rows}


class LockedDocument:
    """One document's registry row while its counter row is held (see `DocumentRegistry.locked`)."""

    def __init__(self, registry: DocumentRegistry, session: Session, doc_id: str, last_version: int) -> None:
        self.doc_id = doc_id
        self.last_version = last_version  # the highest version number handed out for it so far
        self._registry = registry
        self._session = session

    @property
    def row(self) -> Document | None:
        return self._session.get(Document, self.doc_id)

    def save(self, doc: Document) -> bool:
        """Insert or replace the row and its link to its own channel — unless the row already
        describes a newer version (compare-and-set): then nothing changes and False comes back."""
        session = self._session
        existing = self.row
        if existing is not None and existing.version > doc.version:
            return False
        if existing is None:
            session.add(doc)
        else:
            for name, value in doc.model_dump().items():
                setattr(existing, name, value)
            doc = existing
        session.flush()
        link = session.execute(
            select(ChannelLink).where(
                ChannelLink.doc_id == doc.doc_id, ChannelLink.workspace == doc.workspace,
                ChannelLink.channel == doc.channel,
            )
        ).scalar_one_or_none()
        if link is None:
            session.add(ChannelLink(doc_id=doc.doc_id, workspace=doc.workspace, channel=doc.channel))
        self._registry._bump(session, Scope(doc.workspace, doc.channel))
        return True

    def delete(self) -> Document | None:
        """Remove the row and its channel links; the removed row, or None if there was none."""
        doc = self.row
        if doc is None:
            return None
        self._session.execute(delete(ChannelLink).where(ChannelLink.doc_id == self.doc_id))
        self._session.delete(doc)
        self._registry._bump(self._session, Scope(doc.workspace, doc.channel))
        return doc


def flag_reasons_json(reasons: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(reasons), ensure_ascii=False)


def flag_reasons_list(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        return tuple(json.loads(text))
    except ValueError:
        return (text,)


__all__ = ["DocumentRegistry", "LockedDocument", "WORKSPACE_WIDE", "flag_reasons_json", "flag_reasons_list"]
