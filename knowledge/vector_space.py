"""A store remembers which vector space its chunks were embedded in; opening it with another one
re-embeds the stored chunks from their payloads, so vectors of two spaces are never mixed.

The record is a small JSON file in the data directory (`vector-space.json`), one entry per store
(the embedded shard, or a server collection). Every chunk payload carries the chunk's text,
title and headings, so `embedding_text` rebuilds exactly what ingest embedded: re-embedding is
lossless and needs no original files. It runs automatically (a setting change, e.g.
DOCENT_EMBEDDING_BACKEND, must not break an existing install) and says so in the log.

Crash safety: before the first vector is rewritten the record is marked `reembedding_to`; a
store found with that mark is mixed and is re-embedded whole on the next open.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from knowledge.embeddings import MINILM, Embedder
from knowledge.ingest import EMBED_BATCH, embedding_text
from knowledge.store import ChunkStore
from knowledge.types import Chunk

log = logging.getLogger(__name__)

RECORD_FILE = "vector-space.json"
# A store that holds chunks but has no record was made before records existed, when MiniLM
# always ran on torch.
LEGACY_SPACE = f"{MINILM}/torch"
_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class SpaceCheck:
    """What opening a store found: the space it was in, the space it is in now, and how many
    chunks were re-embedded to get there (0 when nothing changed)."""

    previous: str | None
    current: str
    reembedded: int = 0


def reconcile_vector_space(store: ChunkStore, embedder: Embedder, record: Path, *, store_key: str) -> SpaceCheck:
    """Make every vector in `store` belong to `embedder.vector_space`, and record that."""
    from filelock import FileLock

    record = Path(record)
    record.parent.mkdir(parents=True, exist_ok=True)
    current = embedder.vector_space
    # Two processes sharing a data dir (e.g. a server collection) must not re-embed at once.
    with FileLock(str(record) + ".lock"):
        entries = _read(record)
        entry = entries.get(store_key)
        if entry is None:
            if store.count() == 0:
                _write(record, {**entries, store_key: {"vector_space": current}})
                return SpaceCheck(None, current)
            entry = {"vector_space": LEGACY_SPACE}
        previous = entry["vector_space"]
        if previous == current and not entry.get("reembedding_to"):
            return SpaceCheck(previous, current)
        if entry.get("reembedding_to"):
            log.warning("the last re-embedding of %s stopped half way: re-embedding every chunk again", store_key)
        _write(record, {**entries, store_key: {"vector_space": previous, "reembedding_to": current}})
        count = reembed_store(store, embedder, label=f"{previous} → {current}")
        _write(record, {**entries, store_key: {"vector_space": current}})
        return SpaceCheck(previous, current, count)


def reembed_store(store: ChunkStore, embedder: Embedder, *, label: str = "") -> int:
    """Embed every stored chunk again with `embedder` (same point ids: vectors are overwritten)."""
    total = store.count()
    log.info("vector space changed (%s): re-embedding %d stored chunks", label, total)
    started = last_log = time.monotonic()
    done = 0
    batch: list[tuple[Chunk, int, str]] = []

    def flush() -> None:
        nonlocal done, last_log
        if batch:
            store.rewrite_vectors(batch, embedder.embed_array([embedding_text(c) for c, _, _ in batch]))
            done += len(batch)
            batch.clear()
        if time.monotonic() - last_log >= _LOG_EVERY_S:
            last_log = time.monotonic()
            log.info("re-embedding: %d of %d chunks", done, total)

    for point in store.stored_points():
        batch.append(point)
        if len(batch) >= EMBED_BATCH:
            flush()
    flush()
    _flush_store(store)
    log.info("re-embedded %d chunks in %.1f s", done, time.monotonic() - started)
    return done


def _flush_store(store: ChunkStore) -> None:
    flush = getattr(store, "flush", None)
    if callable(flush):
        flush()  # the record must not say "done" before the vectors are on disk


def _read(record: Path) -> dict[str, dict]:
    if not record.exists():
        return {}
    data = json.loads(record.read_text(encoding="utf-8"))
    return dict(data.get("stores", {}))


def _write(record: Path, entries: dict[str, dict]) -> None:
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps({"stores": entries}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, record)
