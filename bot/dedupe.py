"""At-most-once handling of redelivered platform events (Slack retries, Socket Mode reconnects).

`EventDeduper.claim(key)` is True exactly once per key across every process sharing the backend:
Redis `SET <DOCENT_REDIS_KEY_PREFIX>:event:key 1 NX EX ttl` when `settings.redis_url` is set
(the prefix keeps two deployments sharing one Redis from swallowing each other's events),
otherwise an INSERT into the `processed_event` table whose primary key rejects the second claim.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from admin import events

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 24 * 3600  # Slack stops retrying after minutes; a day covers reconnect replays.


class _ClaimBackend(Protocol):
    def claim(self, key: str) -> bool: ...


class _RedisClaims:
    def __init__(self, url: str, ttl_s: int, prefix: str):
        import redis

        self._redis = redis.Redis.from_url(url)
        self._ttl_s = ttl_s
        self._prefix = prefix

    def claim(self, key: str) -> bool:
        return bool(self._redis.set(self._prefix + key, b"1", nx=True, ex=self._ttl_s))

    def close(self) -> None:
        self._redis.close()


class _SqlClaims:
    def __init__(self, engine_or_db, ttl_s: int):
        self._engine = engine_or_db
        self._ttl = timedelta(seconds=ttl_s)
        self._claims_since_purge = 0
        events.ensure_table(engine_or_db)

    def claim(self, key: str) -> bool:
        won = events.claim(self._engine, key)
        self._claims_since_purge += 1
        if self._claims_since_purge >= 1000:  # keep the table small without a scheduler
            self._claims_since_purge = 0
            try:
                events.purge_older_than(self._engine, self._ttl)
            except Exception:
                log.warning("could not purge old processed events", exc_info=True)
        return won

    def close(self) -> None:
        pass


class EventDeduper:
    def __init__(self, backend: _ClaimBackend):
        self._backend = backend

    @classmethod
    def from_settings(
        cls, settings, *, engine_or_db=None, ttl_s: int = DEFAULT_TTL_S, prefix: str | None = None
    ) -> "EventDeduper":
        """Redis when configured (keys under `prefix`, default `<settings.redis_key_prefix>:event:`);
        else the SQL database (`engine_or_db`, default settings' URL)."""
        if settings.redis_url:
            if prefix is None:
                prefix = f"{settings.redis_key_prefix}:event:"
            return cls(_RedisClaims(settings.redis_url, ttl_s, prefix))
        if engine_or_db is None:
            from admin.db import Database

            engine_or_db = Database(settings.sqlalchemy_url)
        return cls(_SqlClaims(engine_or_db, ttl_s))

    def claim(self, key: str) -> bool:
        """True if this caller is the first to see `key` and should handle it."""
        return self._backend.claim(key)

    def close(self) -> None:
        close = getattr(self._backend, "close", None)
        if close:
            close()
