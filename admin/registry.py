"""Durable admin records: the document registry with its channel links, scope generations,
per-user cap overrides and answer feedback. Small SQL helpers the admin operations, the budget
guard and the response cache share; no authorization here (that lives in `admin.operations`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from admin.db import Database
from admin.models import ChannelLink, Document, Feedback, ScopeGeneration, UserCap, to_micro
from knowledge.types import WORKSPACE_WIDE, Scope


def _upsert(db: Database, table):
    return (postgresql if db.dialect == "postgresql" else sqlite).insert(table)


class DocumentRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- documents ------------------------------------------------------------------------
    def save(self, doc: Document) -> Document:
        """Insert or replace the registry row of `doc.doc_id` and its link to its own channel."""
        with self.db.session() as session:
            existing = session.get(Document, doc.doc_id)
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
            self._bump(session, Scope(doc.workspace, doc.channel))
        return doc

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

    def delete(self, doc_id: str) -> Document | None:
        with self.db.session() as session:
            doc = session.get(Document, doc_id)
            if doc is None:
                return None
            session.execute(delete(ChannelLink).where(ChannelLink.doc_id == doc_id))
            session.delete(doc)
            self._bump(session, Scope(doc.workspace, doc.channel))
            return doc

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
        """A token that changes whenever any document visible from `scope` changes."""
        t = ScopeGeneration.__table__.c
        channels = scope.visible_channels
        with self.db.session() as session:
            rows = dict(
                session.execute(
                    select(t.channel, t.generation).where(t.workspace == scope.workspace, t.channel.in_(channels))
                ).all()
            )
        return ".".join(str(rows.get(ch, 0)) for ch in channels)

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
    def record_feedback(self, request_id: str, user: str, helpful: bool) -> None:
        t = Feedback.__table__
        stmt = _upsert(self.db, t).values(
            request_id=request_id, user=user, helpful=helpful, ts=datetime.now(timezone.utc)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["request_id", "user"], set_=dict(helpful=stmt.excluded.helpful, ts=stmt.excluded.ts)
        )
        with self.db.session() as session:
            session.execute(stmt)

    def feedback(self, request_id: str) -> dict[str, bool]:
        with self.db.session() as session:
            rows = session.execute(select(Feedback.user, Feedback.helpful).where(Feedback.request_id == request_id))
            return {user: helpful for user, helpful in rows}


def flag_reasons_json(reasons: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(reasons), ensure_ascii=False)


def flag_reasons_list(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        return tuple(json.loads(text))
    except ValueError:
        return (text,)


__all__ = ["DocumentRegistry", "WORKSPACE_WIDE", "flag_reasons_json", "flag_reasons_list"]
