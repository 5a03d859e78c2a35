"""The child process of the kill -9 tests (`test_crash_recovery.py`): uploads one file into the
Edge store + SQLite registry in DATA_DIR and SIGKILLs itself at the named crash point.

    python -m tests.admin.crash_upload DATA_DIR NAME FILE CRASH_AT

The crash points wrap the real store's backend verbs and core steps in this process only:
  stage       after the first of the new version's pending writes (one point per write)
  publish     with every pending point written, just before the flip to live
  published   just after the flip, inside the registry lock, before the registry commit
  registered  after the registry commit, before the older version is retired
  retired     after retiring the older version (the upload is complete)
  none        no crash
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

CRASH_POINTS = ("stage", "publish", "published", "registered", "retired", "none")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(store, crash_at: str) -> None:
    backend = store.backend
    if crash_at == "stage":
        upsert, written = backend.upsert, []

        def upsert_then_die(points):
            if written:
                _die()
            upsert(points)
            written.append(points)

        backend.upsert = upsert_then_die
    elif crash_at in ("publish", "published"):
        set_payload = backend.set_payload

        def flip_and_die(flt, payload):
            if crash_at == "publish":
                _die()
            set_payload(flt, payload)
            _die()

        backend.set_payload = flip_and_die
    elif crash_at in ("registered", "retired"):
        retire = store.retire

        def retire_and_die(doc_id, version):
            if crash_at == "registered":
                _die()
            retire(doc_id, version)
            _die()

        store.retire = retire_and_die


def main(data_dir: str, name: str, file: str, crash_at: str) -> None:
    import knowledge.store

    knowledge.store.UPSERT_BATCH = 1  # several writes even for a small document
    from admin.types import Actor
    from knowledge.types import Scope
    from tests.admin.conftest import open_docent

    ops, kb, db = open_docent(Path(data_dir))
    arm(kb.store, crash_at)
    ops.upload(Actor("cli", "T1", "UADMIN", is_platform_admin=True), name, Path(file).read_bytes(), Scope("T1", "C1"))
    kb.store.close()
    db.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[4] not in CRASH_POINTS:
        sys.exit(__doc__)
    main(*sys.argv[1:])
