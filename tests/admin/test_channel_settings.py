"""Per-channel settings, forgetting an uninstalled workspace, the latest 👍/👎 per user, and Slack's
OAuth installations and install states — on SQLite and on the real Postgres."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from slack_sdk.oauth.installation_store import Installation

from admin.operations import AdminOperations, ChannelSettings
from admin.slack_installations import DatabaseInstallationStore, DatabaseOAuthStateStore
from admin.types import Actor, NotAuthorized
from knowledge.types import Scope
from tests.admin.conftest import open_docent

ADMIN = Actor("slack", "T1", "U0ADMIN", is_platform_admin=True)
MEMBER = Actor("slack", "T1", "U0MEMBER")


def test_channel_settings_default_off_and_only_admins_change_them(db):
    ops = AdminOperations(None, db)
    assert ops.channel_settings("slack", "T1", "C1") == ChannelSettings("slack", "T1", "C1")
    with pytest.raises(NotAuthorized):
        ops.set_autoanswer(MEMBER, "C1", True)
    with pytest.raises(NotAuthorized):
        ops.set_experts(MEMBER, "C1", "U0EXPERT")
    ops.set_autoanswer(ADMIN, "C1", True)
    ops.set_experts(ADMIN, "C1", "S0HELP")
    assert ops.channel_settings("slack", "T1", "C1") == ChannelSettings("slack", "T1", "C1", True, "S0HELP")
    ops.set_autoanswer(ADMIN, "C1", False)  # one field at a time: the experts stay
    assert ops.channel_settings("slack", "T1", "C1") == ChannelSettings("slack", "T1", "C1", False, "S0HELP")
    # Per platform, workspace and channel.
    assert ops.channel_settings("slack", "T2", "C1").experts is None
    assert ops.channel_settings("discord", "T1", "C1").autoanswer is False
    assert [s.channel for s in ops.channel_settings_in(ADMIN)] == ["C1"]


def test_the_latest_click_per_user_counts_whatever_order_they_arrive_in(db):
    ops = AdminOperations(None, db)
    now = datetime.now(timezone.utc)
    ops.record_feedback("Ev1", "U1", False, at=now)
    ops.record_feedback("Ev1", "U1", True, at=now - timedelta(seconds=3))  # older, processed later
    assert ops.registry.feedback("Ev1") == {"U1": False}
    ops.record_feedback("Ev1", "U1", True, at=now + timedelta(seconds=3))
    ops.record_feedback("Ev1", "U2", False)  # no click time: now
    assert ops.registry.feedback("Ev1") == {"U1": True, "U2": False}


def test_forgetting_a_workspace_removes_its_documents_and_settings_only(tmp_path):
    ops, knowledge, database = open_docent(tmp_path)
    database.migrate()
    try:
        for team in ("T1", "T2"):
            actor = Actor("slack", team, "U0ADMIN", is_platform_admin=True)
            ops.upload(actor, "a.md", b"# A\n\nAlpha text about vacation days.\n", Scope(team, "C1"))
            ops.upload(actor, "b.md", b"# B\n\nBeta text about expenses.\n", Scope.workspace_wide(team))
            ops.set_autoanswer(actor, "C1", True)
        with pytest.raises(NotAuthorized):
            ops.forget_workspace(MEMBER, "T1")
        gone = ops.forget_workspace(ADMIN, "T1")
        assert (gone.documents, gone.channel_settings) == (2, 1)
        assert ops.list_documents(Scope("T1", "C1")) == []
        assert ops.channel_settings("slack", "T1", "C1").autoanswer is False
        assert sorted(d.name for d in ops.list_documents(Scope("T2", "C1"))) == ["a.md", "b.md"]
        assert ops.channel_settings("slack", "T2", "C1").autoanswer is True
        assert {v.doc_id for v in knowledge.store.versions()} == {d.doc_id for d in ops.list_documents(Scope("T2", "C1"))}
    finally:
        knowledge.store.close()
        database.close()


def _installation(team: str, token: str, *, installed_at: float, user: str = "U0INSTALLER") -> Installation:
    return Installation(app_id="A0DOCENT", team_id=team, team_name=team, bot_token=token, bot_id="B0X",
                        bot_user_id="U0BOT", bot_scopes="chat:write,commands", user_id=user, installed_at=installed_at)


def test_installations_find_the_newest_bot_and_forget_a_workspace(db):
    store = DatabaseInstallationStore(db, "1111.2222")
    other_app = DatabaseInstallationStore(db, "9999.0000")
    store.save(_installation("T1", "xoxb-old", installed_at=1_700_000_000.0))
    store.save(_installation("T1", "xoxb-new", installed_at=1_700_000_100.0, user="U0SECOND"))
    store.save(_installation("T2", "xoxb-t2", installed_at=1_700_000_050.0))
    assert store.find_bot(enterprise_id=None, team_id="T1").bot_token == "xoxb-new"
    assert other_app.find_bot(enterprise_id=None, team_id="T1") is None  # per Slack app
    # The installer's own (older) row still authorizes with the workspace's newest bot token.
    first = store.find_installation(enterprise_id=None, team_id="T1", user_id="U0INSTALLER")
    assert (first.user_id, first.bot_token) == ("U0INSTALLER", "xoxb-new")
    store.delete_bot(enterprise_id=None, team_id="T1")
    assert store.find_bot(enterprise_id=None, team_id="T1") is None
    assert store.find_installation(enterprise_id=None, team_id="T1").bot_token is None  # no token left behind
    store.delete_all(enterprise_id=None, team_id="T1")
    assert store.find_installation(enterprise_id=None, team_id="T1") is None
    assert store.find_bot(enterprise_id=None, team_id="T2").bot_token == "xoxb-t2"


def test_install_states_are_single_use_and_expire(db):
    states = DatabaseOAuthStateStore(db, expiration_seconds=600)
    state = states.issue()
    assert states.consume(state) is True
    assert states.consume(state) is False  # a replayed redirect
    assert states.consume("made-up") is False
    stale = DatabaseOAuthStateStore(db, expiration_seconds=-1).issue()
    assert states.consume(stale) is False
