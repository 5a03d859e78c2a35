"""Small caches of text embeddings: a question asked again (the same words, in any channel) is
not embedded again (`QUERY_VECTORS`), nor is a passage's sentence the reranker and the
answerability score have already read (`SENTENCE_VECTORS`).

Bounded LRU keyed by the embedder's vector space (model and backend) and the query text with
its whitespace normalised, so two embedders never share an entry. Cached vectors are read-only
arrays: a caller can't change what the next asker gets. One process-wide cache of each kind
serves every retriever; the hit and miss counts are there for the bench.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from knowledge.embeddings import Embedder

DEFAULT_SIZE = 1024
# Sentences of the passages questions retrieve: a question reads ~100 of them (the reranker's ten
# passages), and a channel's questions keep coming back to the same pages. 8k × 384 floats ≈ 12 MB.
SENTENCE_CACHE_SIZE = 8192


def normalized_query(text: str) -> str:
    """The cache key's text: runs of whitespace are one space, none at either end (the
    tokenizer splits on whitespace, so these never change the vector)."""
    return " ".join(text.split())


class QueryVectorCache:
    """LRU of query vectors per (vector space, normalised text); thread-safe."""

    def __init__(self, size: int = DEFAULT_SIZE):
        if size < 0:
            raise ValueError("a cache size is 0 (off) or more")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def vector(self, embedder: Embedder, text: str) -> np.ndarray:
        """The embedding of `text` by `embedder`, from the cache when it was asked before."""
        key = (embedder.vector_space, normalized_query(text))
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return cached
            self.misses += 1
        # Embedded outside the lock: two askers of one new question may both embed it, but no
        # asker waits for another's model call.
        vector = np.array(embedder.embed_array([key[1]])[0], dtype=np.float32)
        vector.setflags(write=False)
        self._remember([(key, vector)])
        return vector

    def vectors(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        """The embeddings of `texts` (one row each, in order): those not cached are embedded in
        one batch, each distinct text once."""
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        keys = [(embedder.vector_space, normalized_query(t)) for t in texts]
        found: dict[tuple[str, str], np.ndarray] = {}
        with self._lock:
            for key in keys:
                cached = self._entries.get(key)
                if cached is not None:
                    self._entries.move_to_end(key)
                    found[key] = cached
            missing = list(dict.fromkeys(k for k in keys if k not in found))
            self.hits += len(keys) - len(missing)  # a text repeated in `texts` is embedded once
            self.misses += len(missing)
        if missing:
            batch = np.asarray(embedder.embed_array([k[1] for k in missing]), dtype=np.float32)
            # One array per row: a cached row that were a view would keep its whole batch alive.
            fresh = [np.array(row) for row in batch]
            for row in fresh:
                row.setflags(write=False)
            found.update(zip(missing, fresh))
            self._remember(list(zip(missing, fresh)))
        return np.stack([found[k] for k in keys])

    def _remember(self, entries: list[tuple[tuple[str, str], np.ndarray]]) -> None:
        """Cache fresh (key, read-only vector) pairs, evicting the least recently used."""
        if not self.size:
            return
        with self._lock:
            for key, vector in entries:
                self._entries[key] = vector
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


def embed_through(cache: QueryVectorCache | None, embedder: Embedder, texts: list[str]) -> np.ndarray:
    """`texts` embedded by `embedder`, through `cache` when there is one (`(0, dim)` for none)."""
    return cache.vectors(embedder, texts) if cache is not None else embedder.embed_array(texts)


QUERY_VECTORS = QueryVectorCache()
SENTENCE_VECTORS = QueryVectorCache(SENTENCE_CACHE_SIZE)
