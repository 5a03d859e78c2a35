"""Slack OAuth installations and install-flow states, in docent's own database.

slack_sdk defines the interfaces (`InstallationStore`, `OAuthStateStore`) and the records
(`Installation`, `Bot`); Bolt's OAuth flow and its per-workspace `authorize` only talk to them.
slack_sdk's own SQLAlchemy stores import `sqlalchemy.ext.asyncio`, which needs `greenlet` (not a
dependency here), so the same interfaces are implemented on docent's tables and migrations:
each record is kept whole as slack_sdk's own dict (`to_dict_for_copying`, JSON) beside the
columns it is looked up by, so nothing slack_sdk adds to a record is lost.

Bot tokens sit in these rows as slack_sdk's stores keep them (plain text): the database is
docent's secret store in distributed mode — restrict who can read it.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy import Column, Index, Text, delete, desc, select
from sqlmodel import Field, SQLModel

from admin.db import Database
from admin.models import utcnow

log = logging.getLogger(__name__)


class SlackInstallation(SQLModel, table=True):
    """One installation (who installed, with which tokens); the newest per workspace counts."""

    __tablename__ = "slack_installation"
    __table_args__ = (Index("ix_slack_installation_lookup", "client_id", "enterprise_id", "team_id", "installed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    enterprise_id: str | None = Field(default=None, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    user_id: str = Field(default="", max_length=32)
    installed_at: datetime = Field(default_factory=utcnow)
    data: str = Field(sa_column=Column(Text, nullable=False))  # slack_sdk's Installation, as JSON


class SlackBot(SQLModel, table=True):
    """The bot token of a workspace (or an org, for enterprise installs); the newest counts."""

    __tablename__ = "slack_bot"
    __table_args__ = (Index("ix_slack_bot_lookup", "client_id", "enterprise_id", "team_id", "installed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    enterprise_id: str | None = Field(default=None, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    installed_at: datetime = Field(default_factory=utcnow)
    data: str = Field(sa_column=Column(Text, nullable=False))  # slack_sdk's Bot, as JSON


class SlackOAuthState(SQLModel, table=True):
    """A `state` handed to an installer's browser; consumed once by the OAuth redirect."""

    __tablename__ = "slack_oauth_state"

    state: str = Field(primary_key=True, max_length=200)
    expire_at: datetime = Field(index=True)


def _json(record: dict[str, Any]) -> str:
    return json.dumps(record, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _team_key(team_id: str | None, is_enterprise_install: bool | None) -> str | None:
    # An org-wide (Enterprise Grid) install is one record for every workspace of the org.
    return None if is_enterprise_install else team_id


class DatabaseInstallationStore(InstallationStore):
    """slack_sdk's `InstallationStore` on docent's database (one `client_id` = one Slack app)."""

    def __init__(self, db: Database, client_id: str) -> None:
        self.db = db
        self.client_id = client_id

    @property
    def logger(self) -> logging.Logger:
        return log

    def save(self, installation: Installation) -> None:
        team = _team_key(installation.team_id, installation.is_enterprise_install)
        with self.db.session() as session:
            session.add(SlackInstallation(
                client_id=self.client_id, enterprise_id=installation.enterprise_id, team_id=team,
                user_id=installation.user_id or "", installed_at=_at(installation.installed_at),
                data=_json(installation.to_dict_for_copying()),
            ))
        self.save_bot(installation.to_bot())
        log.info("slack installation saved for team %s (enterprise %s)", team, installation.enterprise_id)

    def save_bot(self, bot: Bot) -> None:
        with self.db.session() as session:
            session.add(SlackBot(
                client_id=self.client_id, enterprise_id=bot.enterprise_id,
                team_id=_team_key(bot.team_id, bot.is_enterprise_install), installed_at=_at(bot.installed_at),
                data=_json(bot.to_dict_for_copying()),
            ))

    def _where(self, model, enterprise_id: str | None, team_id: str | None):
        return (model.client_id == self.client_id, model.enterprise_id == enterprise_id, model.team_id == team_id)

    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        team = _team_key(team_id, is_enterprise_install)
        with self.db.session() as session:
            row = session.execute(
                select(SlackBot).where(*self._where(SlackBot, enterprise_id, team))
                .order_by(desc(SlackBot.installed_at), desc(SlackBot.id)).limit(1)
            ).scalar_one_or_none()
        return Bot(**json.loads(row.data)) if row is not None else None

    def find_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
                          is_enterprise_install: bool | None = False) -> Installation | None:
        team = _team_key(team_id, is_enterprise_install)
        query = select(SlackInstallation).where(*self._where(SlackInstallation, enterprise_id, team))
        if user_id is not None:
            query = query.where(SlackInstallation.user_id == user_id)
        with self.db.session() as session:
            row = session.execute(
                query.order_by(desc(SlackInstallation.installed_at), desc(SlackInstallation.id)).limit(1)
            ).scalar_one_or_none()
        if row is None:
            return None
        installation = Installation(**json.loads(row.data))
        if user_id is not None:
            # The installer's own row may be older than the workspace's newest bot token.
            latest_bot = self.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                       is_enterprise_install=is_enterprise_install)
            if latest_bot is not None and latest_bot.bot_token != installation.bot_token:
                installation.bot_token = latest_bot.bot_token
                installation.bot_id = latest_bot.bot_id
                installation.bot_user_id = latest_bot.bot_user_id
                installation.bot_scopes = latest_bot.bot_scopes
        return installation

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        with self.db.session() as session:
            session.execute(delete(SlackBot).where(*self._where(SlackBot, enterprise_id, team_id)))
        # The installation rows carry the bot token too: without it they authorize nothing.
        with self.db.session() as session:
            for row in session.execute(
                select(SlackInstallation).where(*self._where(SlackInstallation, enterprise_id, team_id))
            ).scalars():
                data = json.loads(row.data)
                for key in ("bot_token", "bot_refresh_token", "bot_token_expires_at"):
                    data[key] = None
                row.data = _json(data)

    def delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                            user_id: str | None = None) -> None:
        query = delete(SlackInstallation).where(*self._where(SlackInstallation, enterprise_id, team_id))
        if user_id is not None:
            query = query.where(SlackInstallation.user_id == user_id)
        with self.db.session() as session:
            session.execute(query)


class DatabaseOAuthStateStore(OAuthStateStore):
    """One-time `state` values for the install flow, valid `expiration_seconds`, shared by replicas."""

    def __init__(self, db: Database, expiration_seconds: int = 600) -> None:
        self.db = db
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    def issue(self, *args, **kwargs) -> str:
        state = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as session:
            session.execute(delete(SlackOAuthState).where(SlackOAuthState.expire_at < now))  # stay small
            session.add(SlackOAuthState(state=state, expire_at=now + timedelta(seconds=self.expiration_seconds)))
        return state

    def consume(self, state: str) -> bool:
        if not state:
            return False
        with self.db.session() as session:
            # DELETE … RETURNING-free: a row deleted by this statement was valid and is now spent,
            # so two replicas racing on one redirect can't both accept it.
            deleted = session.execute(
                delete(SlackOAuthState).where(SlackOAuthState.state == state, SlackOAuthState.expire_at > utcnow())
            ).rowcount
        return deleted == 1
