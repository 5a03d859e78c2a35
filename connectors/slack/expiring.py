"""Small values that expire: private answers waiting to be shared, assistant thread contexts.

In Redis (under `<DOCENT_REDIS_KEY_PREFIX>:slack:`) when docent has one — so the replica that
gets a "Share in channel" click finds the answer another replica stored — else in-process,
bounded, with the same expiry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

log = logging.getLogger(__name__)


class ExpiringValues:
    def __init__(self, *, redis=None, prefix: str = "docent:slack", max_entries: int = 10_000) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max = max_entries
        self._local: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: str, ttl_s: float) -> None:
        if self._redis is not None:
            self._redis.set(f"{self._prefix}:{key}", value.encode(), ex=max(1, int(ttl_s)))
            return
        with self._lock:
            self._local[key] = (time.monotonic() + ttl_s, value)
            self._local.move_to_end(key)
            while len(self._local) > self._max:
                self._local.popitem(last=False)

    def get(self, key: str) -> str | None:
        if self._redis is not None:
            raw = self._redis.get(f"{self._prefix}:{key}")
            return raw.decode() if isinstance(raw, bytes) else raw
        with self._lock:
            item = self._local.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._local[key]
                return None
            return item[1]

    def delete(self, key: str) -> None:
        if self._redis is not None:
            self._redis.delete(f"{self._prefix}:{key}")
            return
        with self._lock:
            self._local.pop(key, None)
