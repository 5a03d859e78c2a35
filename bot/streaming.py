"""Progressive display of a streaming answer without flooding a chat platform's API."""

from __future__ import annotations

import threading
import time
from typing import Callable


class ProgressThrottle:
    """Calls `emit(text)` at most once per `min_interval_s`; `flush()` sends the last text.

    Chat platforms rate-limit message edits (Slack chat.update, Discord webhook edits), so a
    stream of partial answers becomes at most one edit per interval, always ending on the
    newest text.
    """

    def __init__(self, emit: Callable[[str], None], min_interval_s: float = 1.0, clock=time.monotonic):
        self._emit = emit
        self._interval = min_interval_s
        self._clock = clock
        self._last_sent_at: float | None = None
        self._pending: str | None = None
        self._sent: str | None = None
        self._lock = threading.Lock()

    def update(self, text: str) -> bool:
        """Offer the newest partial text; returns True if it was sent now."""
        with self._lock:
            now = self._clock()
            if self._last_sent_at is not None and now - self._last_sent_at < self._interval:
                self._pending = text
                return False
            self._last_sent_at = now
            self._pending = None
            self._sent = text
        self._emit(text)
        return True

    def flush(self) -> None:
        """Send the newest text if it hasn't been sent (call once the stream ends)."""
        with self._lock:
            text, self._pending = self._pending, None
            if text is None or text == self._sent:
                return
            self._last_sent_at = self._clock()
            self._sent = text
        self._emit(text)
