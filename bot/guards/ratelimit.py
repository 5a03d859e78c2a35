"""Per-user, per-channel and per-workspace rate limits (the `limits` library).

With `REDIS_URL` the counters live in Redis and the moving-window strategy admits atomically
(one Lua script per hit), so every bot process shares one exact limit. Without Redis the
counters are in-process. If Redis is configured but unreachable we fail closed: no model call
goes out unmetered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from bot.types import Question, RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)

REDIS_DOWN_MESSAGE = (
    "docent can't reach its rate-limit store right now, so it isn't sending questions to the model. "
    "Please try again in a minute."
)


@dataclass(frozen=True)
class RateLimitRule:
    """One limit and the keys it applies to; `what` names the limited party for the user message."""

    name: str  # "user" | "channel" | "workspace"
    item: RateLimitItem
    what: str


class RateLimiter:
    def __init__(
        self,
        *,
        user: str | None = "10/minute",
        channel: str | None = "60/minute",
        workspace: str | None = "300/hour",
        redis_url: str | None = None,
        key_prefix: str = "docent:rl",
    ) -> None:
        self.redis_url = redis_url
        if redis_url:
            # wrap_exceptions: every backend failure surfaces as limits' StorageError.
            self.storage: Storage = RedisStorage(
                redis_url, key_prefix=key_prefix, wrap_exceptions=True,
                socket_timeout=2, socket_connect_timeout=2,
            )
        else:
            self.storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.rules: dict[str, RateLimitRule] = {}
        for name, spec, what in (
            ("workspace", workspace, "this workspace"),
            ("channel", channel, "this channel"),
            ("user", user, "you"),
        ):
            if spec:
                self.rules[name] = RateLimitRule(name, parse(spec), what)

    @classmethod
    def from_settings(cls, settings) -> "RateLimiter":
        return cls(
            user=settings.rate_limit_user, channel=settings.rate_limit_channel,
            workspace=settings.rate_limit_workspace, redis_url=settings.redis_url,
            key_prefix=f"{settings.redis_key_prefix}:rl",
        )

    def _identifiers(self, q: Question) -> dict[str, tuple[str, ...]]:
        ids = {
            "workspace": (q.platform, q.workspace),
            # DMs have no channel: each user's DM is its own "channel" for this limit.
            "channel": (q.platform, q.workspace, q.channel or f"dm:{q.user}"),
            "user": (q.platform, q.workspace, q.user),
        }
        return {name: ids[name] for name in self.rules}

    def _retry_after(self, rule: RateLimitRule, ids: tuple[str, ...]) -> float:
        stats = self.strategy.get_window_stats(rule.item, rule.name, *ids)
        return max(0.0, stats.reset_time - time.time())

    def hit(self, q: Question) -> None:
        """Count one request against every limit, or raise RateLimited / ServiceUnavailable.

        Each `hit` is atomic; a request refused by a broader limit first passes `test()` so
        it rarely eats a narrower token. The exactness guarantee is: never more admissions
        than a limit allows.
        """
        try:
            ids = self._identifiers(q)
            for name, rule in self.rules.items():
                if not self.strategy.test(rule.item, name, *ids[name]):
                    raise RateLimited(self._retry_after(rule, ids[name]), rule.what)
            for name, rule in self.rules.items():
                if not self.strategy.hit(rule.item, name, *ids[name]):
                    raise RateLimited(self._retry_after(rule, ids[name]), rule.what)
        except (StorageError, ConnectionError, OSError) as err:
            log.error("rate-limit store unreachable (%s); failing closed", type(err).__name__)
            raise ServiceUnavailable(REDIS_DOWN_MESSAGE) from err

    def reset(self) -> None:
        """Forget every counter (tests, admin tooling)."""
        self.storage.reset()
