"""Run a parse in a reusable worker process under a hard time limit.

pypdf is pure Python: one call on a hostile file can run for minutes, and nothing inside the
process can interrupt it (a thread can't be killed; signals only reach the main thread). So the
parse runs in a worker process, and a worker that misses its deadline is killed; the next job
starts a fresh one. Workers outlive their jobs, so the start-up cost is paid once, not per file.

A worker is a fresh interpreter (`subprocess`, i.e. fork + exec), never a plain fork: the parent
runs torch's thread pools, and a forked copy of a threaded process can deadlock on a lock some
thread held at fork time. It isn't multiprocessing's "spawn" either, because spawn re-imports
the caller's main module in the child: a script without a `__main__` guard would then fail, and
a main module that imports torch would cost every worker seconds and hundreds of MB. Jobs and
answers travel as pickles over a socket pair (`multiprocessing.connection.Connection`).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# A new worker imports the interpreter and `preload`: seconds on a busy machine, and not the
# job's fault, so it has its own, generous limit.
_START_TIMEOUT_S = 60.0
# Log records a worker forwards per job: a hostile file can make a parser warn millions of times.
_MAX_FORWARDED_RECORDS = 20
_WORKER_MAIN = "import sys; from knowledge.loaders.workers import serve; serve(int(sys.argv[1]), sys.argv[2:])"


class WorkerTimeout(Exception):
    """The job ran past its deadline; its worker was killed."""


class WorkerCrashed(Exception):
    """The worker died during the job (killed by the OS, out of memory, a crash in C code)."""


class WorkerUnavailable(RuntimeError):
    """No worker could be started: a fault of this machine, not of the job."""


class WorkerPool:
    """At most `max_workers` jobs at once, each in its own worker process; more callers wait.
    Workers start on first use and stay for the next job."""

    def __init__(self, *, max_workers: int = 1, preload: Sequence[str] = ()):
        self._preload = tuple(preload)
        self._slots = threading.BoundedSemaphore(max_workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        atexit.register(self.close)  # a worker mid-parse would otherwise outlive the parent

    def run(self, fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
        """`fn(*args)` in a worker (`fn` importable, args picklable). What `fn` raises is raised
        here; past `timeout_s` seconds the worker is killed and `WorkerTimeout` raised."""
        with self._slots:
            worker = self._take()
            try:
                raised, value = worker.call(fn, args, timeout_s)
            except BaseException:
                with self._lock:
                    self._busy.discard(worker)
                worker.kill()  # mid-job (timeout, crash, Ctrl-C): its state is unknown
                raise
            self._give_back(worker)
            if raised:
                raise value
            return value

    def close(self) -> None:
        """Kill every worker; a job still running gets `WorkerCrashed`. The pool stays usable."""
        with self._lock:
            idle, self._idle = self._idle, []
            busy = list(self._busy)
        for worker in idle:
            worker.kill()
        for worker in busy:  # their callers' threads close the sockets they are reading
            worker.kill_process()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
                worker.kill()
        worker = _Worker(self._preload)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)


class _Worker:
    def __init__(self, preload: tuple[str, ...]):
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The child finds the same code as the parent (what spawn does with sys.path).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(theirs.fileno()), *preload],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self._conn = Connection(ours.detach())
        try:
            if not self._conn.poll(_START_TIMEOUT_S):
                raise WorkerUnavailable(f"the parse worker didn't start within {_START_TIMEOUT_S:g} s")
            self._conn.recv()  # "ready": preloads done, so they don't count against a job's deadline
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerUnavailable(f"the parse worker died while starting (exit code {self.process.poll()})") from exc
        except BaseException:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> tuple[bool, Any]:
        """(True, the exception fn raised) or (False, what it returned)."""
        try:
            self._conn.send((fn, args))
            if not self._conn.poll(timeout_s):
                raise WorkerTimeout(f"no answer within {timeout_s:g} s")
            status, value, records = self._conn.recv()
        except (EOFError, OSError) as exc:  # the socket broke: the worker is gone
            raise WorkerCrashed(f"the worker died (exit code {self.process.poll()})") from exc
        for name, level, message in records:
            logging.getLogger(name).log(level, "%s", message)
        return status == "raised", value

    def kill(self) -> None:
        self.kill_process()
        self._conn.close()

    def kill_process(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # unkillable (stuck in the kernel): leave it to the OS
            log.warning("parse worker %d didn't exit after SIGKILL", self.process.pid)


class _RecordBuffer(logging.Handler):
    """Keeps a job's first log records so the parent logs them under its own configuration."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[tuple[str, int, str]] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < _MAX_FORWARDED_RECORDS:
            try:
                self.records.append((record.name, record.levelno, record.getMessage()))
            except Exception:  # a record whose arguments don't format: not worth failing a parse
                self.dropped += 1
        else:
            self.dropped += 1

    def take(self) -> list[tuple[str, int, str]]:
        records, self.records = self.records, []
        if self.dropped:
            records.append((__name__, logging.INFO, f"{self.dropped} more log records from the worker dropped"))
            self.dropped = 0
        return records


def serve(fd: int, preload: Sequence[str]) -> None:
    """The worker's main loop (`_WORKER_MAIN`): import `preload`, say ready, then answer jobs
    on the socket `fd` until the parent closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills us
    buffer = _RecordBuffer()
    root = logging.getLogger()
    root.handlers[:] = [buffer]
    root.setLevel(logging.INFO)
    conn = Connection(fd)
    for module in preload:
        importlib.import_module(module)
    conn.send("ready")
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):  # the parent closed its end or exited
            return
        try:
            answer = ("ok", fn(*args))
        except Exception as exc:  # RecursionError and MemoryError too: the caller decides
            exc.add_note("raised in the parse worker:\n" + traceback.format_exc())  # the parent can't see our stack
            answer = ("raised", exc)
        try:
            conn.send((*answer, buffer.take()))
        except Exception as exc:  # an answer that doesn't pickle
            conn.send(("raised", RuntimeError(f"the worker's answer can't be sent back: {exc!r}"), buffer.take()))
