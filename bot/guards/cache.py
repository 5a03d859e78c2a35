"""Response cache: same normalized question + same scope + same document versions → same answer.

The key folds in a *scope version* (the generations of the asker's channel and of the
workspace-wide documents, and the workspace's total, see `admin.registry`), so any
upload/replace/remove in the workspace — visible from the scope, or in another channel, whose
documents the answerability score also weighs — makes its old entries unreachable in every
process at once; they then age out by TTL. Values are
the `Answer` dataclass as JSON. Redis when configured, else an in-process LRU with TTL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict

from bot.types import Answer, Outcome, Source, Usage
from knowledge.types import Scope

log = logging.getLogger(__name__)


def cache_key(normalized_question: str, scope: Scope, scope_version: str) -> str:
    # casefold + collapsed whitespace: "What is X?" and "what  is x?" are one question.
    text = " ".join(normalized_question.casefold().split())
    raw = "\x1f".join((scope.workspace, scope.storage_channel, scope_version, text))
    return hashlib.sha256(raw.encode()).hexdigest()


def answer_to_json(answer: Answer) -> str:
    return json.dumps(dataclasses.asdict(answer), ensure_ascii=False, default=str)


def answer_from_json(text: str) -> Answer:
    d = json.loads(text)
    return Answer(
        text=d["text"],
        sources=tuple(Source(**s) for s in d.get("sources", ())),
        outcome=Outcome(d["outcome"]),
        usage=Usage(**d["usage"]),
        notices=tuple(d.get("notices", ())),
        request_id=d.get("request_id"),
        retry_after_s=d.get("retry_after_s"),
        answerability=d.get("answerability"),
        related=tuple(Source(**s) for s in d.get("related", ())),
        extra=d.get("extra") or {},
    )


class ResponseCache:
    def __init__(self, *, ttl_s: int, redis=None, max_entries: int = 10_000, key_prefix: str = "docent:cache") -> None:
        self.ttl_s = ttl_s
        self.redis = redis
        self.prefix = key_prefix
        self.max_entries = max_entries
        self._local: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        try:
            if self.redis is not None:
                raw = self.redis.get(f"{self.prefix}:{key}")
                if raw is None:
                    return None
                return answer_from_json(raw.decode() if isinstance(raw, bytes) else raw)
            with self._lock:
                item = self._local.get(key)
                if item is None:
                    return None
                expires, raw = item
                if expires < time.monotonic():
                    del self._local[key]
                    return None
                self._local.move_to_end(key)
            return answer_from_json(raw)
        except Exception:  # a cache miss is always a safe answer
            log.warning("response cache read failed", exc_info=True)
            return None

    def put(self, key: str, answer: Answer) -> None:
        raw = answer_to_json(answer)
        try:
            if self.redis is not None:
                self.redis.set(f"{self.prefix}:{key}", raw, ex=self.ttl_s)
                return
            with self._lock:
                self._local[key] = (time.monotonic() + self.ttl_s, raw)
                self._local.move_to_end(key)
                while len(self._local) > self.max_entries:
                    self._local.popitem(last=False)
        except Exception:
            log.warning("response cache write failed", exc_info=True)

    def clear_local(self) -> None:
        """Drop in-process entries (they are unreachable after a generation bump anyway)."""
        with self._lock:
            self._local.clear()
