"""Hybrid fusion shared by every store: both stores fetch the same two candidate lists (dense
cosine and BM25, each already scope-filtered), and `ChunkStore.search` ranks them with
`fused_order` and keeps the newest version of each document with `newest_versions`, so the
ranking is identical whichever store runs it.

Default method (measured on SciFact / Cranfield, see DEFAULT_FUSION): 0.7 × cosine + 0.3 × BM25
relative to the best BM25 candidate, over deep candidate lists; RRF and min-max convex fusion
are available. Ties are broken by point id so the order is deterministic in both stores.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Literal, NamedTuple

from knowledge.chunk_records import version_key

FusionMethod = Literal["rrf", "convex", "cosine_bm25"]

# How many candidates each side fetches for a search of `limit`: deeper lists let a chunk that
# is good on both sides but top on neither win the fusion.
CANDIDATE_FACTOR = 8
MIN_CANDIDATES = 50


@dataclass(frozen=True)
class FusionConfig:
    method: FusionMethod = "rrf"
    rrf_k: float = 60.0
    dense_weight: float = 1.0  # rrf: weight of the dense list; convex/cosine_bm25: alpha of the dense side
    sparse_weight: float = 1.0  # rrf only


# Measured (nDCG@10, SciFact / Cranfield): dense 0.644 / 0.371, BM25 0.686 / 0.352,
# RRF(k=60) 0.716 / 0.407, min-max convex α=.7 0.734 / 0.403, cosine_bm25 α=.7 0.738 / 0.404 —
# the best mean of the eleven settings tried, and its fused score keeps the cosine's absolute scale.
DEFAULT_FUSION = FusionConfig("cosine_bm25", dense_weight=0.7)


@dataclass(frozen=True)
class Candidate:
    """One point returned by a candidate search: its id, score there, payload and dense vector."""

    point_id: str
    score: float
    payload: dict
    dense: list[float] | None = None


def candidate_limit(limit: int) -> int:
    return max(MIN_CANDIDATES, CANDIDATE_FACTOR * limit)


class Ranked(NamedTuple):
    """One fused result before its payload is read: point id, fused score and both side scores.
    (A named tuple: a search builds one per candidate, and a frozen dataclass cost more than
    the fusion's arithmetic.)"""

    point_id: str
    score: float
    dense_score: float | None
    sparse_score: float | None


def fused_order(
    dense: list[Candidate],
    sparse: list[Candidate],
    sparse_cosines: dict[str, float],
    config: FusionConfig = DEFAULT_FUSION,
) -> list[Ranked]:
    """Every candidate, best first by fused score, before the version rule: it reads no payload."""
    dense_scores: dict[str, float] = {}
    sparse_scores: dict[str, float] = {}
    for c in dense:
        dense_scores[c.point_id] = float(c.score)
    for c in sparse:
        sparse_scores[c.point_id] = float(c.score)
        if c.point_id not in dense_scores and c.point_id in sparse_cosines:
            dense_scores[c.point_id] = sparse_cosines[c.point_id]
    fused = _fused_scores(dense, sparse, dense_scores, config)
    # Rounded so float noise between stores can't reorder near-ties; ties go by point id.
    ranked = sorted((-round(score, 6), pid, score) for pid, score in fused.items())
    return [Ranked(pid, score, dense_scores.get(pid), sparse_scores.get(pid)) for _, pid, score in ranked]


def newest_versions(ranked: list[Ranked], payloads: dict[str, dict], limit: int,
                    eligible: Container[str] | None = None) -> list[Ranked]:
    """The best `limit` of `ranked` (only `eligible` ones, when given), leaving out every point of
    a document that any payload in `payloads` (`RANK_FIELDS` at least) shows a newer version of.

    Replace = publish the new version, then delete the old: in between both are live, and a
    reader must never get a mix. A result never mixes versions as long as `payloads` covers
    every point it could return."""
    keys = {pid: version_key(p) for pid, p in payloads.items()}
    newest: dict[str, tuple[int, float]] = {}
    for pid, p in payloads.items():
        newest[p["doc_id"]] = max(newest.get(p["doc_id"], (-1, float("-inf"))), keys[pid])
    out: list[Ranked] = []
    for r in ranked:
        if r.point_id not in keys or (eligible is not None and r.point_id not in eligible):
            continue
        if keys[r.point_id] < newest[payloads[r.point_id]["doc_id"]]:
            continue
        out.append(r)
        if len(out) >= limit:
            break
    return out


def _canonical_order(ranked: list[Candidate]) -> list[Candidate]:
    """Best first, equal scores (to float32 noise) by point id: stores order ties differently."""
    return sorted(ranked, key=lambda c: (-round(c.score, 5), c.point_id))


def _fused_scores(
    dense: list[Candidate], sparse: list[Candidate], cosine: dict[str, float], config: FusionConfig
) -> dict[str, float]:
    out: dict[str, float] = {}
    if config.method == "rrf":  # ranks matter only here: put ties in one order whichever store ran
        dense, sparse = _canonical_order(dense), _canonical_order(sparse)
        for weight, ranked in ((config.dense_weight, dense), (config.sparse_weight, sparse)):
            for rank, c in enumerate(ranked):
                out[c.point_id] = out.get(c.point_id, 0.0) + weight / (config.rrf_k + rank + 1)
        return out
    alpha = config.dense_weight
    bm25 = {c.point_id: c.score for c in sparse}
    ids = set(cosine) | set(bm25)
    if config.method == "convex":
        # Min-max normalise each side over the candidates; a side that missed a point counts 0.
        dense_norm = _min_max(cosine)
        sparse_norm = _min_max(bm25)
    else:  # "cosine_bm25": the cosine as is (absolute), BM25 relative to the best BM25 candidate
        dense_norm = cosine
        top = max(bm25.values(), default=0.0)
        sparse_norm = {pid: (v / top if top > 0 else 0.0) for pid, v in bm25.items()}
    for pid in ids:
        out[pid] = alpha * dense_norm.get(pid, 0.0) + (1.0 - alpha) * sparse_norm.get(pid, 0.0)
    return out


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {pid: ((v - lo) / span if span > 0 else 1.0) for pid, v in scores.items()}
