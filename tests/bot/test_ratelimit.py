"""Rate limits: exact under concurrency (threads and processes sharing Redis), fail closed without Redis."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.guards.ratelimit import RateLimiter
from bot.types import Question, RateLimited, ServiceUnavailable

PROCESSES = 2
THREADS = 8
REQUESTS = 200  # in total, across processes
LIMIT = 5


def _q(user="U1", channel="C1", workspace="T1") -> Question:
    return Question("slack", workspace, channel, user, "how do I book travel?")


def _try_hits(limiter: RateLimiter, n: int, start: threading.Event | None = None) -> int:
    if start is not None:
        start.wait()
    admitted = 0
    for _ in range(n):
        try:
            limiter.hit(_q())
            admitted += 1
        except RateLimited:
            pass
    return admitted


def _process_worker(redis_url: str, prefix: str, n: int, start, results) -> None:
    limiter = RateLimiter(user=f"{LIMIT}/minute", channel="1000/minute", workspace="1000/hour",
                          redis_url=redis_url, key_prefix=prefix)
    per_thread = n // THREADS
    assert limiter.storage.check()  # connected before the race starts
    start.wait()
    with ThreadPoolExecutor(THREADS) as pool:
        admitted = sum(pool.map(lambda _: _try_hits(limiter, per_thread), range(THREADS)))
    results.put(admitted)


@pytest.mark.redis
def test_two_processes_share_one_exact_limit_in_redis(redis_url):
    prefix = f"docent:test:rl:{uuid.uuid4().hex}"
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()  # both processes ready before any request
    procs = [ctx.Process(target=_process_worker, args=(redis_url, prefix, REQUESTS // PROCESSES, start, results))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        admitted = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
        RateLimiter(redis_url=redis_url, key_prefix=prefix).reset()
    assert all(p.exitcode == 0 for p in procs)
    assert sum(admitted) == LIMIT  # exactly: no over- and no under-admission


def test_in_process_limit_is_exact_under_threads():
    limiter = RateLimiter(user=f"{LIMIT}/minute", channel=None, workspace=None)
    start = threading.Event()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_try_hits, limiter, REQUESTS // THREADS, start) for _ in range(THREADS)]
        start.set()
        assert sum(f.result() for f in futures) == LIMIT


def test_refusal_says_when_to_retry_and_who_is_limited():
    limiter = RateLimiter(user="2/minute", channel="100/minute", workspace="100/hour")
    limiter.hit(_q())
    limiter.hit(_q())
    with pytest.raises(RateLimited) as err:
        limiter.hit(_q())
    assert 0 < err.value.retry_after_s <= 60
    assert "from you" in str(err.value)
    limiter.hit(_q(user="U2"))  # other users are unaffected


def test_channel_and_workspace_limits_apply_across_users():
    limiter = RateLimiter(user="100/minute", channel="3/minute", workspace="5/hour")
    for user in ("U1", "U2", "U3"):
        limiter.hit(_q(user=user))
    with pytest.raises(RateLimited, match="this channel"):
        limiter.hit(_q(user="U4"))
    limiter.hit(_q(user="U4", channel="C2"))
    limiter.hit(_q(user="U5", channel="C3"))
    with pytest.raises(RateLimited, match="this workspace") as err:
        limiter.hit(_q(user="U6", channel="C4"))
    assert 3000 < err.value.retry_after_s <= 3600
    limiter.hit(_q(workspace="T2"))


def test_redis_configured_but_down_fails_closed(caplog):
    limiter = RateLimiter(user="5/minute", redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(ServiceUnavailable, match="try again"):
        limiter.hit(_q())
    assert any("failing closed" in r.getMessage() for r in caplog.records)


@pytest.mark.redis
def test_redis_limit_reports_retry_after(redis_url):
    prefix = f"docent:test:rl:{uuid.uuid4().hex}"
    limiter = RateLimiter(user="1/minute", redis_url=redis_url, key_prefix=prefix)
    try:
        limiter.hit(_q())
        with pytest.raises(RateLimited) as err:
            limiter.hit(_q())
        assert 0 < err.value.retry_after_s <= 60
    finally:
        limiter.reset()


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402


@given(limit=st.integers(1, 20), attempts=st.integers(0, 40), users=st.integers(1, 3))
@hsettings(max_examples=60, deadline=None)
def test_each_user_gets_exactly_the_limit(limit, attempts, users):
    limiter = RateLimiter(user=f"{limit}/hour", channel=None, workspace=None)
    for u in range(users):
        admitted = 0
        for _ in range(attempts):
            try:
                limiter.hit(_q(user=f"U{u}"))
                admitted += 1
            except RateLimited:
                pass
        assert admitted == min(limit, attempts)
