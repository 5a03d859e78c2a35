"""Qdrant Edge backend: an embedded, in-process shard in one folder (the default mode).

One writer process per folder (Edge locks its WAL), so the store may sweep pending points when it
opens.

Searches scan the asker's points only and are exact in effect. The scope filter is one condition
on `live_scope`, a keyword index laid out by tenant (`is_tenant`): at 100k chunks the dense
search reads the scope's posting list instead of checking workspace, channel and state point by
point (measured at 100k chunks, scopes of 10k, p50 of 200 scoped dense searches in two rounds: 1.5–1.7
ms against 2.6–3.0 with the three conditions). `ChunkStore.optimize` (after every upload) seals the append log once it is
over `INDEXING_THRESHOLD_KB`: the sealed segment keeps an int8 copy of every vector, scanned
first, and the best `OVERSAMPLING` × limit are rescored with the float vectors — the hits and
their cosines are the exact scan's (tests/knowledge/test_store_optimize.py). Payloads are cached
in RAM: reading the ranking fields of 100 candidates from cold mmap cost more than the scan.

No HNSW graph (m=0). Measured again with one graph per scope value (`payload_m=16`, m=0) on
random vectors at 100k: no faster than the int8 scan of a 5k-point scope (1.0 vs 0.5 ms) and
recall@10 0.89. Measured and left off before: at 100k chunks a scoped dense search took ~0.9 ms CPU
against ~5 ms exact, but on real MiniLM vectors (5.6k SciFact + handbook sentences, thresholds
lowered so the graph is used) scoped recall@10 against exact was 0.968 (ef 128) / 0.990 (ef 256)
for a scope holding 1/3 of the points and 0.60 / 0.65 for one holding 1/6; ACORN brought it to
1.0 but cost ~17 ms at 100k. The build also holds the GIL for minutes (~400 s at 100k on 2 busy
cores), freezing the process; sealing without a graph takes seconds (it holds the GIL too).

Smaller codes don't make the scan faster: at 100k chunks (random vectors, scopes of 5k–25k, 200
scoped searches each, limit 50, oversampling 3, 2026-12-03) int8 took p50 0.62 ms, binary 1-bit
0.57, binary 2-bit 0.73 and TurboQuant 4-bit 0.60: the scan costs ~50 ns a point of the scope
whatever the code's size (4.5 ms for all 100k), so it is the engine's per-point work, not memory.
Also measured and left: the BM25 candidates' vectors returned with them, their cosines taken in
numpy instead of an `among` search — the dense step fell from 1.43 to 1.00 ms p50, but turning
50 vectors into Python objects on the BM25 thread held the GIL while the query was embedded
(2.73 against 2.32 ms), so the whole search was no faster (p50 4.62 vs 4.49, p95 5.73 vs 5.74
interleaved); nor was a one-thread search pool (`max_search_threads=1`: within ±0.2 ms over three
alternating runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from knowledge.chunk_records import DENSE_VECTOR, INDEXED_FIELDS, SPARSE_VECTOR
from knowledge.embeddings import DIM
from knowledge.fusion import DEFAULT_FUSION, Candidate, FusionConfig
from knowledge.store import ChunkStore, PointData, PointRecord, VectorQuery, Where

_SCHEMA = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
           "tenant": qe.KeywordIndexParams(is_tenant=True)}
# Dense: int8 copies of the vectors scanned first, the best `OVERSAMPLING` × limit rescored with
# the float vectors — in segments `optimize` has sealed; the small appendable one is scanned plain.
OVERSAMPLING = 3.0
_DENSE_SEARCH = qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING))
_EXACT = qe.SearchParams(exact=True)
# No HNSW graph (m=0): scoped searches stay full scans of the scope's points, so no graph to
# build (minutes, holding the GIL) and no recall lost to filtering. Sealing a segment builds only
# its int8 copies and its payload and sparse indexes (measured: 5.4 s for 40k chunks at once on a
# loaded machine, 0.7–0.8 s for a 3k-chunk upload into a 60k store).
_HNSW_OFF = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10, payload_m=0)
_INT8 = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
# Segments above this size (KB; a 384-d vector is 1.5 KB, so ~6.5k chunks) are sealed by
# `optimize`. Below it a plain scan is fast anyway, and sealing costs ~100 MB of RSS.
INDEXING_THRESHOLD_KB = 10_000
# Sealed segments kept apart before the smallest are merged: a small upload seals a small
# segment of its own instead of being merged into (and rewriting) the big one.
SEGMENTS = 16


def _condition(c: dict):
    """One condition of the store's JSON filter as an Edge object."""
    if "is_empty" in c:
        return qe.IsEmptyCondition(c["is_empty"]["key"])
    if "range" in c:
        return qe.FieldCondition(c["key"], range=qe.RangeFloat(**c["range"]))
    match = c["match"]
    return qe.FieldCondition(c["key"], match=qe.MatchAny(match["any"]) if "any" in match else qe.MatchValue(match["value"]))


class EdgeBackend:
    exclusive = True

    def __init__(self, path: Path, dim: int):
        self.path = Path(path)
        self.name = f"at {self.path}"
        config = qe.EdgeConfig(
            vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                                                       quantization_config=_INT8, hnsw_config=_HNSW_OFF)},
            sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB, default_segment_number=SEGMENTS),
            payload_memory=qe.Memory.Cached,
        )
        if self.path.is_dir() and any(self.path.iterdir()):
            self.shard = qe.EdgeShard.load(str(self.path), config)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.shard = qe.EdgeShard.create(str(self.path), config)
        indexed = set(self.shard.info().payload_schema)
        for field, kind in INDEXED_FIELDS.items():
            if field not in indexed:
                self.shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))

    def filter(self, where: Where) -> qe.Filter:
        return qe.Filter(must=[_condition(c) for c in where["must"]],
                         must_not=[_condition(c) for c in where.get("must_not", ())] or None)

    def upsert(self, points: Sequence[PointData]) -> None:
        self.shard.update(qe.UpdateOperation.upsert_points([
            qe.Point(p.id, {DENSE_VECTOR: p.dense, SPARSE_VECTOR: qe.SparseVector(*p.sparse)}, p.payload)
            for p in points
        ]))

    def delete(self, flt: qe.Filter) -> None:
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(flt))

    def set_payload(self, flt: qe.Filter, payload: dict) -> None:
        self.shard.update(qe.UpdateOperation.set_payload_by_filter(flt, payload))

    def count(self, flt: qe.Filter | None) -> int:
        return self.shard.count(qe.CountRequest(exact=True, filter=flt))

    def scroll(self, flt: qe.Filter | None, fields: list[str], offset: Any, limit: int) -> tuple[list[dict], Any]:
        records, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=limit, filter=flt, with_payload=fields))
        return [r.payload or {} for r in records], offset

    def query(self, queries: Sequence[VectorQuery], flt: qe.Filter, limit: int, fields: list[str]) -> list[list[Candidate]]:
        def request(q: VectorQuery) -> qe.QueryRequest:
            if q.among is not None:  # ids a scoped search returned: their exact cosines (the ids go as
                # the strings they are: Edge parses them; making uuid.UUIDs in Python cost ~0.2 ms a search)
                return qe.QueryRequest(limit=len(q.among), query=qe.Query.Nearest(q.dense, using=DENSE_VECTOR),
                                       filter=qe.Filter(must=[qe.HasIdCondition(set(q.among))]),
                                       with_payload=False, with_vector=False, params=_EXACT)
            nearest = (qe.Query.Nearest(q.dense, using=DENSE_VECTOR) if q.dense is not None
                       else qe.Query.Nearest(qe.SparseVector(*q.sparse), using=SPARSE_VECTOR))
            return qe.QueryRequest(limit=limit, query=nearest, filter=flt, with_payload=fields or False, with_vector=False,
                                   params=_DENSE_SEARCH if q.dense is not None else _EXACT)

        results = self.shard.query_batch(qe.QueryBatchRequest([request(q) for q in queries]))
        return [[Candidate(str(p.id), p.score, p.payload or {}) for p in hits] for hits in results]

    def retrieve(self, ids: Sequence[str], fields: list[str]) -> list[PointRecord]:
        records = self.shard.retrieve(list(ids), with_payload=fields if fields else False, with_vector=False)
        return [PointRecord(str(r.id), r.payload or {}) for r in records]

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> None:
        self.shard.optimize()

    def close(self) -> None:
        try:
            self.shard.flush()
        finally:
            self.shard.close()


class EdgeChunkStore(ChunkStore):
    """The chunk store in a Qdrant Edge shard at `path` (created on first use, loaded afterwards)."""

    def __init__(self, path: Path, *, dim: int = DIM, fusion: FusionConfig = DEFAULT_FUSION):
        self.path = Path(path)
        super().__init__(EdgeBackend(self.path, dim), dim=dim, fusion=fusion)
