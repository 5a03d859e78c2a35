"""kill -9 during an upload, at every step of it: a real child process uploads into a Qdrant Edge
store + SQLite registry in a temp dir and SIGKILLs itself at a crash point it is told
(`crash_upload.py` wraps the real store's steps; no sleeps). The parent then reopens both as a
restarting bot would (the store sweeps pending points on open, the admin side reconciles) and
checks: the document is whole in its old or its new version — never a mix, never a fragment —
store and registry agree, and uploading again works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from admin.types import Actor
from knowledge.chunking import chunk_document
from knowledge.types import Scope, document_id
from tests.admin.conftest import open_docent

PROJECT = Path(__file__).resolve().parents[2]
ADMIN = Actor("cli", "T1", "UADMIN", is_platform_admin=True)
CHANNEL = Scope("T1", "C1")
NAME = "travel.md"
OLD = b"""# Travel

Book travel through the travel desk.

## Hotels

Hotel costs are reimbursed up to the per diem rate.
"""
NEW = b"""# Travel

Book travel through the new travel portal.

## Trains

Trains are preferred for trips under four hours.

## Hotels

Hotel costs are reimbursed up to twice the per diem rate.
"""


def _chunk_texts(kb, data: bytes) -> set[str]:
    doc = kb.load(NAME, data)
    return {c.text for c in chunk_document(doc, CHANNEL, doc_id="x", chunk_tokens=kb.chunk_tokens,
                                           overlap_tokens=kb.overlap_tokens, ingested_at=0.0)}


def _crash(data_dir: Path, data: bytes, crash_at: str) -> int:
    file = data_dir / "upload.md"
    file.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.run(
        [sys.executable, "-m", "tests.admin.crash_upload", str(data_dir), NAME, str(file), crash_at],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert child.returncode in (0, -signal.SIGKILL), child.stderr
    return child.returncode


def _searched(kb) -> tuple[set[str], set[str]]:
    """(content hashes, chunk texts) of this document that a search returns."""
    vector = kb.embed_texts(["travel hotel trains portal desk"])[0]
    hits = [h for h in kb.store.search("travel hotel trains portal desk", vector, CHANNEL, 50)
            if h.chunk.source == NAME]
    return {h.chunk.content_hash for h in hits}, {h.chunk.text for h in hits}


def _settled(ops, kb) -> bytes | None:
    """Check every invariant; return the version the document is in (OLD, NEW, or None: absent)."""
    doc_id = document_id(CHANNEL, NAME)
    versions = kb.store.versions(doc_id)
    assert all(v.live for v in versions), "pending points left after reopening"
    row = ops.registry.get(doc_id)
    hashes, texts = _searched(kb)
    if row is None:
        assert versions == [] and hashes == set(), "searchable without a registry row"
        return None
    assert [(v.version, v.content_hash, v.chunks) for v in versions] == [(row.version, row.content_hash, row.chunks)]
    content = {kb.load(NAME, d).content_hash: d for d in (OLD, NEW)}[row.content_hash]
    assert hashes == {row.content_hash} and texts == _chunk_texts(kb, content)  # whole, and only it
    return content


CASES = [
    # replacing OLD with NEW
    (OLD, "stage", OLD), (OLD, "publish", OLD), (OLD, "published", OLD), (OLD, "registered", NEW),
    (OLD, "retired", NEW),
    # a new document
    (None, "stage", None), (None, "published", None), (None, "registered", NEW),
]


@pytest.mark.parametrize("before,crash_at,after", CASES,
                         ids=[f"{'replace' if b else 'new'}-{c}" for b, c, _ in CASES])
def test_kill_9_leaves_the_old_or_the_new_version_and_upload_works_again(tmp_path, before, crash_at, after):
    ops, kb, db = open_docent(tmp_path)
    db.migrate()
    if before is not None:
        ops.upload(ADMIN, NAME, before, CHANNEL)
    kb.store.close()

    assert _crash(tmp_path, NEW, crash_at) == -signal.SIGKILL

    ops, kb, db = open_docent(tmp_path)  # the bot restarts
    try:
        hashes, texts = _searched(kb)  # even before reconciling: one whole version, or nothing
        assert hashes == set() or any(texts == _chunk_texts(kb, d) for d in (OLD, NEW))
        ops.reconcile()
        assert _settled(ops, kb) == after
        report = ops.upload(ADMIN, NAME, NEW, CHANNEL)
        assert report.changed == (after != NEW)
        assert _settled(ops, kb) == NEW
    finally:
        kb.store.close()
        db.close()


def test_the_child_uploads_when_not_told_to_crash(tmp_path):
    ops, kb, db = open_docent(tmp_path)
    db.migrate()
    kb.store.close()
    assert _crash(tmp_path, NEW, "none") == 0
    ops, kb, db = open_docent(tmp_path)
    try:
        assert _settled(ops, kb) == NEW
    finally:
        kb.store.close()
        db.close()
