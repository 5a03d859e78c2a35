"""EventDeduper: one winner per key, with Redis and with the SQL table, under concurrency."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from admin import events
from bot.dedupe import EventDeduper


def _race(deduper: EventDeduper, keys: list[str], copies: int) -> dict[str, int]:
    """Claim every key `copies` times from many threads; count winners per key."""
    jobs = [k for k in keys for _ in range(copies)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(deduper.claim, jobs))
    wins: dict[str, int] = {k: 0 for k in keys}
    for key, won in zip(jobs, results):
        wins[key] += won
    return wins


def test_sql_claims_once_per_key_under_concurrency(settings):
    deduper = EventDeduper.from_settings(settings)
    keys = [f"ev-{i}" for i in range(40)]
    wins = _race(deduper, keys, copies=4)
    assert set(wins.values()) == {1}
    assert deduper.claim("ev-0") is False
    assert deduper.claim("ev-new") is True


def test_sql_claims_survive_a_restart(settings):
    first = EventDeduper.from_settings(settings)
    assert first.claim("Ev-restart")
    first.close()
    again = EventDeduper.from_settings(settings)  # a new process would open the same database
    assert again.claim("Ev-restart") is False


def test_purge_forgets_only_old_claims(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}")
    events.ensure_table(engine)
    assert events.claim(engine, "k1")
    assert events.purge_older_than(engine, timedelta(hours=1)) == 0
    assert events.claim(engine, "k1") is False
    assert events.purge_older_than(engine, timedelta(seconds=-1)) == 1
    assert events.claim(engine, "k1") is True


@pytest.mark.redis
def test_redis_claims_once_per_key_under_concurrency(settings, redis_url):
    settings = settings.model_copy(update={"redis_url": redis_url})
    prefix = f"docent:test:{uuid.uuid4().hex}:"
    deduper = EventDeduper.from_settings(settings, prefix=prefix, ttl_s=60)
    other_process = EventDeduper.from_settings(settings, prefix=prefix, ttl_s=60)
    keys = [f"ev-{i}" for i in range(40)]
    wins = _race(deduper, keys, copies=4)
    assert set(wins.values()) == {1}
    assert other_process.claim("ev-3") is False
    assert other_process.claim("ev-fresh") is True
    deduper.close()
    other_process.close()


@pytest.mark.postgres
def test_postgres_table_claims_once(postgres_url):
    engine = create_engine(postgres_url)
    events.ensure_table(engine)
    key = f"pg-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: events.claim(engine, key), range(8)))
    assert results.count(True) == 1
    engine.dispose()


@pytest.mark.redis
def test_event_claims_carry_the_deployments_redis_key_prefix(settings, redis_url):
    """Two deployments sharing one Redis (DOCENT_REDIS_KEY_PREFIX apart) each handle their own
    copy of an event; the claim lives under the deployment's prefix."""
    import redis

    run = uuid.uuid4().hex
    prefixes = (f"docent-a-{run}", f"docent-b-{run}")
    dedupers = [
        EventDeduper.from_settings(settings.model_copy(update={"redis_url": redis_url, "redis_key_prefix": p}), ttl_s=60)
        for p in prefixes
    ]
    client = redis.Redis.from_url(redis_url)
    try:
        assert [d.claim("slack:event:Ev1") for d in dedupers] == [True, True]
        assert [d.claim("slack:event:Ev1") for d in dedupers] == [False, False]
        for p in prefixes:
            assert client.exists(f"{p}:event:slack:event:Ev1")
    finally:
        for d in dedupers:
            d.close()
        client.delete(*(f"{p}:event:slack:event:Ev1" for p in prefixes))
        client.close()
