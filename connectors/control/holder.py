"""Who holds a data directory: the one process that owns its embedded Qdrant Edge shard.

The shard has one writer process (a second open fails with "Can't init WAL: WouldBlock"), so
every docent process that opens the embedded store first takes `holder.lock` in the data dir
(an advisory `flock`, released by the kernel however the process ends) and writes who it is
into `holder.json`. A `docent run` holder also serves a control socket (`run/control.sock`,
mode 0600 in a 0700 folder) through which CLI commands forward their store operations.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

LOCK_NAME = "holder.lock"
INFO_NAME = "holder.json"
RUN_DIR = "run"
SOCKET_NAME = "control.sock"
# sockaddr_un holds 108 bytes; longer socket paths are reached through /proc/self/fd (below).
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class HolderInfo:
    pid: int
    command: str  # e.g. "docent run", "docent ingest"
    serving: bool  # its control socket takes store operations
    started_at: float


class DataDirLock:
    """`lock.acquire("docent ingest")` → True when this process now holds the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._fd: int | None = None
        self._info: HolderInfo | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / RUN_DIR / SOCKET_NAME

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str) -> bool:
        if self._fd is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self._write(HolderInfo(os.getpid(), command, serving=False, started_at=time.time()))
        return True

    def mark_serving(self, serving: bool = True) -> None:
        """Tell other processes the control socket is (or is no longer) taking requests."""
        assert self._info is not None, "mark_serving() needs the lock"
        self._write(HolderInfo(self._info.pid, self._info.command, serving, self._info.started_at))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            (self.data_dir / INFO_NAME).unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            self._info = None

    def holder(self) -> HolderInfo | None:
        """Who holds the data dir, as it last wrote; None when unknown (or nobody)."""
        try:
            data = json.loads((self.data_dir / INFO_NAME).read_text())
            return HolderInfo(int(data["pid"]), str(data["command"]), bool(data["serving"]), float(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, info: HolderInfo) -> None:
        # Written to a temporary file and renamed: a reader never sees half of it.
        tmp = self.data_dir / f".{INFO_NAME}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(info)))
        os.replace(tmp, self.data_dir / INFO_NAME)
        self._info = info

    def __enter__(self) -> "DataDirLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def private_run_dir(lock: DataDirLock) -> Path:
    """The folder of the control socket, readable by this user only."""
    run_dir = lock.socket_path.parent
    run_dir.mkdir(mode=0o700, exist_ok=True)
    run_dir.chmod(0o700)
    return run_dir


@contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """A path to bind or connect a Unix socket at `path`, short enough for sockaddr_un: the path
    itself, or the same file reached through an open handle on its folder (/proc/self/fd/N/…)."""
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
