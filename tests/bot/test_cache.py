"""Response cache: answers round-trip as JSON; keys follow question, scope and document versions."""

from __future__ import annotations

import uuid

import pytest

from admin.db import Database
from admin.registry import DocumentRegistry
from bot.guards.cache import ResponseCache, answer_from_json, answer_to_json, cache_key
from bot.types import Answer, Outcome, Source, Usage
from knowledge.types import Scope

ANSWER = Answer(
    text="Book through the travel desk [1].",
    sources=(Source(1, "d1", "Travel policy", "travel.md", 2, "Flights", "Book through…", "https://x/travel"),),
    outcome=Outcome.answered,
    usage=Usage("claude-haiku-4-5", 900, 120, 0.0015, 840.0),
    notices=("note",),
    request_id="r1",
    extra={"k": [1, 2]},
)


def test_answer_round_trips_through_json():
    assert answer_from_json(answer_to_json(ANSWER)) == ANSWER
    back = answer_from_json(answer_to_json(ANSWER))
    assert back.outcome is Outcome.answered and back.sources[0].label == "Travel policy (p. 2, Flights)"
    assert back.extra == {"k": [1, 2]}


def test_key_ignores_case_and_spacing_but_not_scope_or_version():
    c1 = Scope("T1", "C1")
    k = cache_key("How do I book travel?", c1, "1.0")
    assert cache_key("  how do I   BOOK travel? ", c1, "1.0") == k
    assert cache_key("How do I book travel?", Scope("T1", "C2"), "1.0") != k
    assert cache_key("How do I book travel?", Scope("T2", "C1"), "1.0") != k
    assert cache_key("How do I book travel?", c1, "2.0") != k
    assert cache_key("How do I book a hotel?", c1, "1.0") != k


@pytest.fixture
def registry(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate()
    yield DocumentRegistry(db)
    db.close()


def test_scope_generation_changes_with_any_document_of_the_workspace(registry):
    c1, c2, everywhere = Scope("T1", "C1"), Scope("T1", "C2"), Scope.workspace_wide("T1")
    v1, v2, dm = registry.generation(c1), registry.generation(c2), registry.generation(Scope("T1", None))
    other = registry.generation(Scope("T2", "C1"))
    registry.bump_generation(c2)
    # Another channel's change reaches C1's answers too: C1's answerability score weighs how
    # much closer C2's documents come to a question (ChunkStore.best_elsewhere).
    assert registry.generation(c1) != v1
    assert registry.generation(c2) != v2
    v1 = registry.generation(c1)
    registry.bump_generation(everywhere)
    assert registry.generation(c1) != v1  # a workspace-wide change reaches every channel …
    assert registry.generation(Scope("T1", None)) != dm  # … and DMs
    assert registry.generation(Scope("T2", "C1")) == other  # … of that workspace only


def test_in_process_cache_expires_and_evicts():
    cache = ResponseCache(ttl_s=0)
    cache.put("k", ANSWER)
    assert cache.get("k") is None  # already expired
    cache = ResponseCache(ttl_s=60, max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, ANSWER)
    assert cache.get("a") is None and cache.get("c") == ANSWER


@pytest.mark.redis
def test_redis_cache_is_shared_between_instances(redis_url):
    import redis

    prefix = f"docent:test:cache:{uuid.uuid4().hex}"
    r1, r2 = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    try:
        ResponseCache(ttl_s=60, redis=r1, key_prefix=prefix).put("k", ANSWER)
        assert ResponseCache(ttl_s=60, redis=r2, key_prefix=prefix).get("k") == ANSWER
        assert 0 < r1.ttl(f"{prefix}:k") <= 60
    finally:
        for key in r1.scan_iter(f"{prefix}:*"):
            r1.delete(key)
        r1.close()
        r2.close()


def test_unreachable_redis_is_a_miss_not_an_error():
    import redis

    cache = ResponseCache(ttl_s=60, redis=redis.Redis.from_url("redis://127.0.0.1:1/0"))
    cache.put("k", ANSWER)
    assert cache.get("k") is None
