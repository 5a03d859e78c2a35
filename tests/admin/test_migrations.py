"""The Alembic migrations build exactly the schema the models describe, on SQLite and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import admin.events  # noqa: F401  (its table is migrated too)
import admin.models  # noqa: F401
import admin.slack_installations  # noqa: F401

EXPECTED_TABLES = {
    "request_record", "daily_user_total", "document", "channel_link", "feedback", "user_cap",
    "scope_generation", "processed_event", "alembic_version",
    "channel_setting", "slack_installation", "slack_bot", "slack_oauth_state",
}


def test_migrated_schema_matches_models(db):
    assert EXPECTED_TABLES <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diffs == []


def test_migrate_twice_is_a_no_op(db):
    db.migrate()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0005"


def test_migrate_runs_from_any_working_directory(tmp_path):
    # The package's migrations are found by path, not relative to the cwd.
    project = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    code = f"from admin.db import Database; d = Database({url!r}); d.migrate(); print(sorted(__import__('sqlalchemy').inspect(d.engine).get_table_names()))"
    env = {**os.environ, "PYTHONPATH": str(project)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "request_record" in out.stdout


def test_sqlite_runs_in_wal_mode(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _migrate_in_child(url: str, start, results) -> None:
    from admin.db import Database

    start.wait()
    try:
        Database(url).migrate()
        results.put("ok")
    except Exception as err:  # reported to the parent, which fails the test
        results.put(repr(err))


def _concurrent_migrations(url: str) -> list[str]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_child, args=(url, start, results)) for _ in range(3)]
    for p in procs:
        p.start()
    start.set()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return out


def test_processes_starting_together_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'together.db'}"
    assert _concurrent_migrations(url) == ["ok"] * 3


def test_processed_event_created_before_its_migration_is_adopted(tmp_path):
    from admin.db import Database
    from admin.events import claim, ensure_table

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate("0001")
    ensure_table(db)  # what the Slack dedupe did on databases migrated before 0002
    assert claim(db, "evt-1")
    db.migrate()
    assert not claim(db, "evt-1")  # the table and its row survived the upgrade
    db.close()
