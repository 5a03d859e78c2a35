"""The SQL database behind the ledger and the document registry: one engine, short sessions.

SQLite (the embedded default) runs in WAL mode with a busy timeout so several readers and one
writer (or several bot processes on one host) don't trip over each other; Postgres is reached
through `DATABASE_URL` with pre-ping so a restarted server doesn't surface as a stale connection.
The schema comes from the Alembic migrations shipped inside this package (`migrate()`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x646F63656E74  # "docent": serializes concurrent `migrate()` on Postgres


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Database:
    """Owns the engine for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            db_path = parsed.database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread off: sessions are short and never shared between threads.
            engine_kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        else:
            engine_kwargs.setdefault("pool_pre_ping", True)
        self.engine: Engine = create_engine(url, echo=echo, **engine_kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` with the migrations packaged next to this file."""
        from alembic import command
        from alembic.migration import MigrationContext

        # Alembic narrates every start-up at INFO ("Context impl SQLiteImpl."): keep that out of
        # the request log unless something is actually migrated (logged below by us).
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
        # Several bot processes may start at once: one migrates, the others wait and find it done.
        with self._migration_lock(), self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(self.alembic_config(connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """A file lock beside a SQLite file (its DDL isn't transactional under pysqlite)."""
        db_path = make_url(self.url).database if self.is_sqlite else None
        if not db_path or db_path == ":memory:":
            yield
            return
        import fcntl

        with open(f"{db_path}.migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def alembic_config(self, connection=None):
        """Programmatic Alembic config: works from an installed package, whatever the cwd."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        # '%' would be read as interpolation by configparser.
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
