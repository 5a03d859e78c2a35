"""Executors whose queued and running tasks are counted, so shutdown and tests can wait for quiet."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


class InFlight:
    """Counts tasks submitted to docent's executors, so shutdown (and tests) can wait for quiet."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self._count += 1

    def leave(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout_s)


class TrackedExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose pending + running tasks are counted in an `InFlight`."""

    def __init__(self, in_flight: InFlight, **kwargs):
        super().__init__(**kwargs)
        self._in_flight = in_flight

    def submit(self, fn, /, *args, **kwargs):
        self._in_flight.enter()
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._in_flight.leave()
            raise
        future.add_done_callback(lambda _: self._in_flight.leave())
        return future
