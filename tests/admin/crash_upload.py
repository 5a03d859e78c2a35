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


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at(owner, verb: str, *, before: bool, spare: int = 0) -> None:
    """Make `owner.verb` SIGKILL this process just before (or just after) it runs, from its
    `spare + 1`-th call on."""
    real, calls = getattr(owner, verb), []

    def dying(*args):
        calls.append(args)
        armed = len(calls) > spare
        if armed and before:
            _die()
        result = real(*args)
        if armed:
            _die()
        return result

    setattr(owner, verb, dying)


CRASH_POINTS = {
    "stage": lambda store: _kill_at(store.backend, "upsert", before=True, spare=1),
    "publish": lambda store: _kill_at(store.backend, "set_payload", before=True),
    "published": lambda store: _kill_at(store.backend, "set_payload", before=False),
    "registered": lambda store: _kill_at(store, "retire", before=True),
    "retired": lambda store: _kill_at(store, "retire", before=False),
    "none": lambda store: None,
}


def main(data_dir: str, name: str, file: str, crash_at: str) -> None:
    import knowledge.store

    knowledge.store.UPSERT_BATCH = 1  # several writes even for a small document
    from admin.types import Actor
    from knowledge.types import Scope
    from tests.admin.conftest import open_docent

    ops, kb, db = open_docent(Path(data_dir))
    CRASH_POINTS[crash_at](kb.store)
    ops.upload(Actor("cli", "T1", "UADMIN", is_platform_admin=True), name, Path(file).read_bytes(), Scope("T1", "C1"))
    kb.store.close()
    db.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[4] not in CRASH_POINTS:
        sys.exit(__doc__)
    main(*sys.argv[1:])
