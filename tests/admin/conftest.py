"""Databases for the admin tests: a fresh SQLite file, and a private schema on the real Postgres.

The Postgres at DATABASE_URL is shared by every test run, so each test gets its own schema
(through `search_path`) and drops it afterwards.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from admin.db import Database


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'docent.db'}")
    db.migrate()
    yield db
    db.close()


def _schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_db(postgres_url):
    schema = f"docent_test_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(_schema_url(postgres_url, schema))
    try:
        db.migrate()
        yield db
    finally:
        db.close()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin_engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request):
    """The same test on SQLite and on the real Postgres."""
    return request.getfixturevalue(f"{request.param}_db")


def open_docent(data_dir):
    """The document side of a bot in `data_dir`: a Qdrant Edge store, a SQLite registry and the
    admin operations over them (hash embeddings). Returns (ops, knowledge base, database)."""
    from pathlib import Path

    from admin.operations import AdminOperations
    from knowledge.edge_store import EdgeChunkStore
    from knowledge.embeddings import HashEmbeddings
    from knowledge.ingest import KnowledgeBase

    data_dir = Path(data_dir)
    db = Database(f"sqlite:///{data_dir / 'docent.db'}")
    kb = KnowledgeBase(EdgeChunkStore(data_dir / "edge"), HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)
    return AdminOperations(kb, db), kb, db
