"""Cost caps: reservations keep concurrent spend within one request of the cap, in-process and in Redis."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from admin.db import Database
from admin.ledger import LedgerEntry, UsageLedger
from admin.models import to_micro
from admin.registry import DocumentRegistry
from bot.guards.budget import CostBudget
from bot.types import BudgetExceeded, ServiceUnavailable

USER_CAP = 1.00
WORKSPACE_CAP = 1.50
MAX_COST = 0.07
THREADS = 8
ATTEMPTS_PER_THREAD = 15


def _spend(budget: CostBudget, user: str, attempts: int, seed: int, start: threading.Event | None = None) -> int:
    """Reserve the worst case, 'call the model', settle a random actual cost ≤ the worst case."""
    rng = random.Random(seed)
    if start is not None:
        start.wait()
    settled = 0
    for _ in range(attempts):
        try:
            res = budget.reserve("T1", user, MAX_COST)
        except BudgetExceeded:
            continue
        actual = round(rng.uniform(0.005, MAX_COST), 6)
        budget.settle(res, actual)
        settled += to_micro(actual)
    return settled


def _redis_client(url):
    import redis

    return redis.Redis.from_url(url)


def _cleanup(url: str, prefix: str) -> None:
    r = _redis_client(url)
    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)
    r.close()


def test_threads_never_overshoot_the_user_cap():
    budget = CostBudget(user_daily_cap_usd=USER_CAP, workspace_daily_cap_usd=100)
    start = threading.Event()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_spend, budget, "U1", ATTEMPTS_PER_THREAD, i, start) for i in range(THREADS)]
        start.set()
        total = sum(f.result() for f in futures)
    assert total <= to_micro(USER_CAP) + to_micro(MAX_COST)
    assert total >= to_micro(USER_CAP) - 2 * to_micro(MAX_COST) * THREADS  # the cap was actually reached
    assert budget.committed_microusd("T1", "U1") == total  # no reservation left outstanding


def test_workspace_cap_binds_across_users():
    budget = CostBudget(user_daily_cap_usd=USER_CAP, workspace_daily_cap_usd=WORKSPACE_CAP)
    start = threading.Event()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_spend, budget, f"U{i}", ATTEMPTS_PER_THREAD, i, start) for i in range(THREADS)]
        start.set()
        total = sum(f.result() for f in futures)
    assert total <= to_micro(WORKSPACE_CAP) + to_micro(MAX_COST)
    with pytest.raises(BudgetExceeded, match="this workspace"):
        budget.reserve("T1", "U-new", MAX_COST)


def _process_worker(redis_url: str, prefix: str, seed: int, start, results) -> None:
    budget = CostBudget(user_daily_cap_usd=USER_CAP, workspace_daily_cap_usd=100,
                        redis=_redis_client(redis_url), key_prefix=prefix)
    assert budget.redis.ping()  # connected before the race starts
    start.wait()
    with ThreadPoolExecutor(THREADS) as pool:
        results.put(sum(pool.map(lambda i: _spend(budget, "U1", ATTEMPTS_PER_THREAD, seed * 100 + i),
                                 range(THREADS))))


@pytest.mark.redis
def test_two_processes_near_a_cap_overshoot_at_most_one_request(redis_url):
    prefix = f"docent:test:budget:{uuid.uuid4().hex}"
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()  # both processes ready before any request
    procs = [ctx.Process(target=_process_worker, args=(redis_url, prefix, seed, start, results)) for seed in (1, 2)]
    for p in procs:
        p.start()
    try:
        total = sum(results.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=30)
        assert all(p.exitcode == 0 for p in procs)
        assert total <= to_micro(USER_CAP) + to_micro(MAX_COST)
        assert total >= to_micro(USER_CAP) - 4 * to_micro(MAX_COST) * THREADS
        budget = CostBudget(user_daily_cap_usd=USER_CAP, workspace_daily_cap_usd=100,
                            redis=_redis_client(redis_url), key_prefix=prefix)
        assert budget.committed_microusd("T1", "U1") == total
    finally:
        _cleanup(redis_url, prefix)


@pytest.fixture
def ledger_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    yield db
    db.close()


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_spend_seeds_from_the_ledger_and_overrides_apply(backend, ledger_db, request):
    ledger, registry = UsageLedger(ledger_db), DocumentRegistry(ledger_db)
    ledger.record(LedgerEntry("earlier", "slack", "T1", "C1", "U1", "answered", cost_usd=0.95,
                              ts=datetime.now(timezone.utc)))
    prefix = f"docent:test:budget:{uuid.uuid4().hex}"
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None

    def make() -> CostBudget:
        return CostBudget(
            user_daily_cap_usd=1.00, workspace_daily_cap_usd=25.0,
            spent_microusd=lambda ws, user, day: ledger.spent_today_microusd(ws, user, day=day),
            user_cap_override=registry.user_cap_microusd,
            redis=_redis_client(redis_url) if redis_url else None, key_prefix=prefix,
        )

    try:
        budget = make()
        with pytest.raises(BudgetExceeded, match="your"):
            budget.reserve("T1", "U1", 0.10)  # 0.95 already spent today + 0.10 > 1.00
        res = budget.reserve("T1", "U1", 0.05)  # exactly up to the cap is fine
        budget.release(res)
        budget.release(res)  # idempotent: releasing twice doesn't hand out money
        assert budget.committed_microusd("T1", "U1") == 950_000

        registry.set_user_cap("T1", "U1", 5.0)  # an admin's override takes effect at once
        res = budget.reserve("T1", "U1", 1.0)
        budget.settle(res, 0.25)
        budget.settle(res, 0.25)
        assert budget.committed_microusd("T1", "U1") == 1_200_000
        registry.set_user_cap("T1", "U1", 0.0)
        with pytest.raises(BudgetExceeded):
            budget.reserve("T1", "U1", 0.0001)
    finally:
        if redis_url:
            _cleanup(redis_url, prefix)


def test_redis_down_fails_closed():
    budget = CostBudget(user_daily_cap_usd=1, workspace_daily_cap_usd=1, redis=_redis_client("redis://127.0.0.1:1/0"))
    with pytest.raises(ServiceUnavailable):
        budget.reserve("T1", "U1", 0.01)


# --- property: whatever the interleaving of reserve/settle/release, the cap holds ----------------
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

_ops = st.lists(
    st.tuples(st.sampled_from(["reserve", "settle", "release"]), st.integers(0, 200_000), st.integers(0, 10)),
    max_size=60,
)


@given(cap=st.integers(0, 1_000_000), ops=_ops)
@hsettings(max_examples=200, deadline=None)
def test_committed_spend_never_exceeds_the_cap(cap, ops):
    budget = CostBudget(user_daily_cap_usd=cap / 1e6, workspace_daily_cap_usd=10)
    open_res, settled = [], 0
    for op, amount, pick in ops:
        if op == "reserve":
            try:
                open_res.append(budget.reserve("T1", "U1", amount / 1e6))
            except BudgetExceeded:
                assert budget.committed_microusd("T1", "U1") + amount > cap
        elif open_res:
            res = open_res.pop(pick % len(open_res))
            if op == "settle":
                actual = amount % (res.amount_microusd + 1)  # actual ≤ reserved, as the caller guarantees
                budget.settle(res, actual / 1e6)
                settled += actual
            else:
                budget.release(res)
        committed = budget.committed_microusd("T1", "U1")
        assert committed <= cap
        assert committed == settled + sum(r.amount_microusd for r in open_res)


@pytest.mark.redis
def test_a_crashed_holders_reservation_stays_charged(redis_url):
    """A process that dies mid-call never settles: its worst case stays spent (the call may have
    been billed), in every process, and a live holder still settles exactly once."""
    prefix = f"docent:test:budget:{uuid.uuid4().hex}"

    def make() -> CostBudget:
        return CostBudget(user_daily_cap_usd=1.0, workspace_daily_cap_usd=10, redis=_redis_client(redis_url),
                          key_prefix=prefix)

    try:
        crashed = make()
        crashed.reserve("T1", "U1", 0.90)  # the process dies before settling
        slow_holder = make()
        slow = slow_holder.reserve("T1", "U1", 0.05)
        survivor = make()
        with pytest.raises(BudgetExceeded):
            survivor.reserve("T1", "U1", 0.50)
        slow_holder.settle(slow, 0.04)
        assert survivor.committed_microusd("T1", "U1") == 940_000
        with pytest.raises(BudgetExceeded):
            survivor.reserve("T1", "U1", 0.10)  # the crashed worst case is never handed back
        assert survivor.committed_microusd("T1") == 940_000
    finally:
        _cleanup(redis_url, prefix)
