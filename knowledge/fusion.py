"""Hybrid fusion shared by every store: both stores fetch the same two candidate lists (dense
cosine and BM25, each already scope-filtered) and hand them to `fuse_candidates`, so the ranking
is identical whichever store runs it.

Method (measured on SciFact / Cranfield, see README): reciprocal-rank fusion over deep candidate
lists; a tie is broken by point id so the order is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from knowledge.types import Chunk, Hit

FusionMethod = Literal["rrf", "convex"]

DENSE_VECTOR = "dense"
# How many candidates each side fetches for a search of `limit`: deeper lists let a chunk that
# is good on both sides but top on neither win the fusion.
CANDIDATE_FACTOR = 8
MIN_CANDIDATES = 50


@dataclass(frozen=True)
class FusionConfig:
    method: FusionMethod = "rrf"
    rrf_k: float = 60.0
    dense_weight: float = 1.0  # rrf: weight of the dense list; convex: alpha of the dense score
    sparse_weight: float = 1.0


DEFAULT_FUSION = FusionConfig()


@dataclass(frozen=True)
class Candidate:
    """One point returned by a candidate search: its id, score there, payload and dense vector."""

    point_id: str
    score: float
    payload: dict
    dense: list[float] | None = None


def candidate_limit(limit: int) -> int:
    return max(MIN_CANDIDATES, CANDIDATE_FACTOR * limit)


def fuse_candidates(
    dense: list[Candidate],
    sparse: list[Candidate],
    query_vector: np.ndarray,
    limit: int,
    config: FusionConfig = DEFAULT_FUSION,
) -> list[Hit]:
    """Fuse two ranked candidate lists into at most `limit` hits, newest document version only."""
    payloads: dict[str, dict] = {}
    dense_scores: dict[str, float] = {}
    sparse_scores: dict[str, float] = {}
    for c in dense:
        payloads[c.point_id] = c.payload
        dense_scores[c.point_id] = float(c.score)
    q = np.asarray(query_vector, dtype=np.float64)
    q = q / (np.linalg.norm(q) or 1.0)
    for c in sparse:
        payloads.setdefault(c.point_id, c.payload)
        sparse_scores[c.point_id] = float(c.score)
        if c.point_id not in dense_scores and c.dense is not None:
            # Every hit carries its cosine: the "do the documents answer this" check needs it.
            v = np.asarray(c.dense, dtype=np.float64)
            dense_scores[c.point_id] = float(q @ (v / (np.linalg.norm(v) or 1.0)))

    fused = _fused_scores(dense, sparse, config)

    # Keep only the newest version of each document among the candidates (replace = insert new,
    # then delete old; in between both exist and a reader must never get a mix).
    newest: dict[str, float] = {}
    for pid, p in payloads.items():
        newest[p["doc_id"]] = max(newest.get(p["doc_id"], float("-inf")), float(p["ingested_at"]))
    ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
    hits: list[Hit] = []
    for pid, score in ranked:
        p = payloads[pid]
        if float(p["ingested_at"]) < newest[p["doc_id"]]:
            continue
        hits.append(
            Hit(
                chunk=Chunk.from_payload(p),
                score=score,
                dense_score=dense_scores.get(pid),
                sparse_score=sparse_scores.get(pid),
            )
        )
        if len(hits) >= limit:
            break
    return hits


def _fused_scores(dense: list[Candidate], sparse: list[Candidate], config: FusionConfig) -> dict[str, float]:
    out: dict[str, float] = {}
    if config.method == "rrf":
        for weight, ranked in ((config.dense_weight, dense), (config.sparse_weight, sparse)):
            for rank, c in enumerate(ranked):
                out[c.point_id] = out.get(c.point_id, 0.0) + weight / (config.rrf_k + rank + 1)
        return out
    # convex: min-max normalise each list over its own candidates, missing side counts as 0.
    alpha = config.dense_weight
    for weight, ranked in ((alpha, dense), (1.0 - alpha, sparse)):
        if not ranked:
            continue
        scores = [c.score for c in ranked]
        lo, hi = min(scores), max(scores)
        span = hi - lo
        for c in ranked:
            norm = (c.score - lo) / span if span > 0 else 1.0
            out[c.point_id] = out.get(c.point_id, 0.0) + weight * norm
    return out
