"""Daily cost caps per user and per workspace, enforced by reserving the worst case up front.

Before a model call the caller reserves `max_cost_usd` (prompt tokens + max_tokens at the model's
price); the reservation is admitted only if spent + outstanding reservations + max_cost stays
within BOTH caps. After the call it is settled to the actual cost (or released on failure).
Because admission and reservation are one atomic step, concurrent requests can never overshoot
a cap by more than one request's worst case (and not at all when actual ≤ reserved).

Counters are integer micro-dollars per UTC day: in Redis (one Lua script, keys expire after two
days) so every process shares them, or in-process behind a lock. A missing counter is seeded
from the ledger's spend for that day, so a Redis flush or a restart doesn't reset anyone's cap.
A reservation whose process dies before settling stays charged: its model call may have been
billed, and the request's pending ledger row carries the same worst case (see `admin.ledger`),
so counters re-seeded from the ledger agree. Without Redis the counters are per process: run
one process, or configure Redis.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable

from admin.models import from_micro, to_micro
from bot.types import BudgetExceeded, ServiceUnavailable

log = logging.getLogger(__name__)

KEY_TTL_S = 2 * 24 * 3600

# KEYS: user counter, workspace counter.
# ARGV: amount, user cap, workspace cap, user seed, workspace seed, key ttl.
# Returns {0, user_total, ws_total} when reserved, {1, user_committed} / {2, ws_committed} when refused.
_RESERVE_LUA = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[6], 'NX') end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6], 'NX') end
local amount = tonumber(ARGV[1])
local user_now = tonumber(redis.call('GET', KEYS[1]))
local ws_now = tonumber(redis.call('GET', KEYS[2]))
if user_now + amount > tonumber(ARGV[2]) then return {1, user_now} end
if ws_now + amount > tonumber(ARGV[3]) then return {2, ws_now} end
local u = redis.call('INCRBY', KEYS[1], amount)
local w = redis.call('INCRBY', KEYS[2], amount)
return {0, u, w}
"""

# Settle/release: move both counters by ARGV[1] (actual − reserved, or −reserved).
_ADJUST_LUA = r"""
if tonumber(ARGV[1]) ~= 0 then
  for i = 1, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[1]) end
  end
end
return 1
"""


@dataclass(frozen=True)
class Reservation:
    id: str
    workspace: str
    user: str
    day: date
    amount_microusd: int

    @property
    def amount_usd(self) -> float:
        return from_micro(self.amount_microusd)


def _today() -> date:
    return datetime.now(timezone.utc).date()


class CostBudget:
    """Reserve → settle/release against per-user and per-workspace daily caps."""

    def __init__(
        self,
        *,
        user_daily_cap_usd: float,
        workspace_daily_cap_usd: float,
        spent_microusd: Callable[[str, str | None, date], int] | None = None,
        user_cap_override: Callable[[str, str], int | None] | None = None,
        redis=None,
        key_prefix: str = "docent:budget",
        clock: Callable[[], date] = _today,
    ) -> None:
        self.user_cap = to_micro(user_daily_cap_usd)
        self.workspace_cap = to_micro(workspace_daily_cap_usd)
        self._spent = spent_microusd or (lambda ws, user, day: 0)
        self._override = user_cap_override or (lambda ws, user: None)
        self.redis = redis
        self.prefix = key_prefix
        self.clock = clock
        self._lock = threading.Lock()
        self._local: dict[tuple, int] = {}
        self._open: set[str] = set()  # reservations not yet settled/released (idempotency)
        self._open_lock = threading.Lock()
        if redis is not None:
            self._reserve_script = redis.register_script(_RESERVE_LUA)
            self._adjust_script = redis.register_script(_ADJUST_LUA)

    @classmethod
    def from_settings(cls, settings, *, ledger=None, registry=None, redis=None) -> "CostBudget":
        spent = None
        if ledger is not None:
            spent = lambda ws, user, day: ledger.spent_today_microusd(ws, user, day=day)  # noqa: E731
        override = registry.user_cap_microusd if registry is not None else None
        return cls(
            user_daily_cap_usd=settings.user_daily_cap_usd,
            workspace_daily_cap_usd=settings.workspace_daily_cap_usd,
            spent_microusd=spent, user_cap_override=override, redis=redis,
            key_prefix=f"{settings.redis_key_prefix}:budget",
        )

    # --- keys -------------------------------------------------------------------------------
    def _keys(self, workspace: str, user: str, day: date) -> tuple[str, str]:
        """User counter, workspace counter (both per UTC day)."""
        d = day.isoformat()
        return f"{self.prefix}:{d}:user:{workspace}:{user}", f"{self.prefix}:{d}:ws:{workspace}"

    def user_cap_microusd(self, workspace: str, user: str) -> int:
        override = self._override(workspace, user)
        return self.user_cap if override is None else override

    # --- public API -------------------------------------------------------------------------
    def reserve(self, workspace: str, user: str, max_cost_usd: float) -> Reservation:
        amount = max(0, to_micro(max_cost_usd))
        day = self.clock()
        user_cap = self.user_cap_microusd(workspace, user)
        res = Reservation(uuid.uuid4().hex, workspace, user, day, amount)
        if self.redis is not None:
            self._reserve_redis(res, user_cap)
        else:
            self._reserve_local(workspace, user, day, amount, user_cap)
        with self._open_lock:
            self._open.add(res.id)
        return res

    def settle(self, reservation: Reservation, actual_cost_usd: float) -> None:
        """Replace the reserved worst case by the actual cost. A second settle/release is a no-op."""
        if not self._close(reservation):
            return
        actual = max(0, to_micro(actual_cost_usd))
        self._adjust(reservation, actual - reservation.amount_microusd)

    def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call failed or was answered from cache)."""
        if not self._close(reservation):
            return
        self._adjust(reservation, -reservation.amount_microusd)

    def committed_microusd(self, workspace: str, user: str | None = None) -> int:
        """Spent + outstanding reservations today (for reports and tests)."""
        day = self.clock()
        ukey, wkey = self._keys(workspace, user or "", day)
        if self.redis is not None:
            value = self.redis.get(ukey if user else wkey)
            return int(value) if value is not None else self._spent(workspace, user, day)
        with self._lock:
            key = ("user", day, workspace, user) if user else ("ws", day, workspace)
            return self._local.get(key, self._spent(workspace, user, day))

    # --- internals --------------------------------------------------------------------------
    def _close(self, reservation: Reservation) -> bool:
        with self._open_lock:
            if reservation.id not in self._open:
                return False
            self._open.discard(reservation.id)
            return True

    def _refuse(self, which: int, committed: int, cap: int, amount: int) -> BudgetExceeded:
        who = "your" if which == 1 else "this workspace's"
        log.info("budget: %s cap reached (committed %d µ$ + %d µ$ > cap %d µ$)",
                 "user" if which == 1 else "workspace", committed, amount, cap)
        return BudgetExceeded(who, f" (${from_micro(cap):.2f} per day)")

    def _reserve_redis(self, res: Reservation, user_cap: int) -> None:
        import redis as redis_lib

        workspace, user, day, amount = res.workspace, res.user, res.day, res.amount_microusd
        ukey, wkey = self._keys(workspace, user, day)
        try:
            # Seeds are only used when a counter is missing; reading them costs a query, so
            # ask the ledger only then.
            useed = wseed = 0
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(ukey)
            pipe.exists(wkey)
            u_exists, w_exists = pipe.execute()
            if not u_exists:
                useed = self._spent(workspace, user, day)
            if not w_exists:
                wseed = self._spent(workspace, None, day)
            result = self._reserve_script(
                keys=[ukey, wkey], args=[amount, user_cap, self.workspace_cap, useed, wseed, KEY_TTL_S]
            )
        except redis_lib.RedisError as err:
            log.error("budget store unreachable (%s); failing closed", type(err).__name__)
            raise ServiceUnavailable(
                "docent can't reach its budget store right now, so it isn't sending questions to the model. "
                "Please try again in a minute."
            ) from err
        status = int(result[0])
        if status == 1:
            raise self._refuse(1, int(result[1]), user_cap, amount)
        if status == 2:
            raise self._refuse(2, int(result[1]), self.workspace_cap, amount)

    def _reserve_local(self, workspace: str, user: str, day: date, amount: int, user_cap: int) -> None:
        ukey, wkey = ("user", day, workspace, user), ("ws", day, workspace)
        with self._lock:
            if ukey not in self._local:
                self._local[ukey] = self._spent(workspace, user, day)
            if wkey not in self._local:
                self._local[wkey] = self._spent(workspace, None, day)
            if self._local[ukey] + amount > user_cap:
                raise self._refuse(1, self._local[ukey], user_cap, amount)
            if self._local[wkey] + amount > self.workspace_cap:
                raise self._refuse(2, self._local[wkey], self.workspace_cap, amount)
            self._local[ukey] += amount
            self._local[wkey] += amount
            # Old days are dead weight in a long-running process.
            for key in [k for k in self._local if k[1] < day]:
                del self._local[key]

    def _adjust(self, reservation: Reservation, delta: int) -> None:
        if self.redis is not None:
            keys = self._keys(reservation.workspace, reservation.user, reservation.day)
            try:
                self._adjust_script(keys=list(keys), args=[delta])
            except Exception:  # the ledger stays the truth; the counter re-seeds from it next day
                log.exception("budget: could not settle reservation %s", reservation.id)
            return
        if delta == 0:
            return
        ukey = ("user", reservation.day, reservation.workspace, reservation.user)
        wkey = ("ws", reservation.day, reservation.workspace)
        with self._lock:
            for key in (ukey, wkey):
                if key in self._local:
                    self._local[key] += delta
