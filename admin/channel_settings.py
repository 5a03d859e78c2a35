"""Per-channel settings rows (auto-answer, experts): reads and upserts, no authorization here
(that lives in `admin.operations`)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from admin.db import Database
from admin.models import ChannelSetting

_UNSET = object()


def get(db: Database, platform: str, workspace: str, channel: str) -> ChannelSetting | None:
    with db.session() as session:
        return session.get(ChannelSetting, (platform, workspace, channel))


def update(db: Database, platform: str, workspace: str, channel: str, *, by: str,
           autoanswer: bool | object = _UNSET, experts: str | None | object = _UNSET) -> ChannelSetting:
    """Change the given fields of one channel's row (created on first use); returns the row."""
    for attempt in (1, 2):  # two admins creating the same row at once: the loser updates it
        try:
            with db.session() as session:
                row = session.get(ChannelSetting, (platform, workspace, channel))
                if row is None:
                    row = ChannelSetting(platform=platform, workspace=workspace, channel=channel)
                    session.add(row)
                if autoanswer is not _UNSET:
                    row.autoanswer = bool(autoanswer)
                if experts is not _UNSET:
                    row.experts = experts  # type: ignore[assignment]
                row.updated_by = by
                row.updated_at = datetime.now(timezone.utc)
            return row
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def in_workspace(db: Database, platform: str, workspace: str) -> list[ChannelSetting]:
    with db.session() as session:
        return list(session.execute(
            select(ChannelSetting).where(ChannelSetting.platform == platform, ChannelSetting.workspace == workspace)
            .order_by(ChannelSetting.channel)
        ).scalars())


def delete_workspace(db: Database, platform: str, workspace: str) -> int:
    with db.session() as session:
        return session.execute(
            delete(ChannelSetting).where(ChannelSetting.platform == platform, ChannelSetting.workspace == workspace)
        ).rowcount or 0
