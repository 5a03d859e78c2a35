"""Tests of the store-independent pieces: point ids, versions, document listings, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.chunk_records import documents_from_payloads, newest_hash, point_id
from knowledge.fusion import DEFAULT_FUSION, Candidate, FusionConfig, fused_order, newest_versions
from knowledge.types import Chunk, Hit, Scope
from tests.knowledge.conftest import make_chunks, qvec, vectors


def test_point_ids_are_deterministic_and_distinguish_versions():
    scope = Scope("T1", "C1")
    a = make_chunks(scope, "a.md", ["x", "y"], content_hash="h1")
    again = make_chunks(scope, "a.md", ["x", "y"], content_hash="h1", ingested_at=5.0)
    newer = make_chunks(scope, "a.md", ["x", "y"], content_hash="h2")
    assert [point_id(c) for c in a] == [point_id(c) for c in again]
    assert len({point_id(c) for c in a + newer}) == 4
    # Two versions of identical content never share a point: a pending write can't touch a live one.
    assert len({point_id(c, v) for c in a for v in (0, 1, 2)}) == 6
    assert [point_id(c, 0) for c in a] == [point_id(c) for c in a]


def test_listing_counts_chunks_and_pages_of_newest_version_only():
    scope = Scope("T1", "C1")
    old = make_chunks(scope, "a.pdf", ["1", "2", "3"], content_hash="old", ingested_at=1.0, pages=[1, 2, 9])
    new = make_chunks(scope, "a.pdf", ["1", "2"], content_hash="new", ingested_at=2.0, pages=[1, 4])
    docs = documents_from_payloads([c.payload() for c in old + new])
    assert len(docs) == 1
    assert docs[0]["content_hash"] == "new"
    assert docs[0]["chunks"] == 2 and docs[0]["pages"] == 4
    assert newest_hash(c.payload() for c in old + new) == "new"
    assert newest_hash([]) is None


def _cands(chunks, scores, with_dense=False):
    return [
        Candidate(point_id(c), s, c.payload(), vectors([c])[0].tolist() if with_dense else None)
        for c, s in zip(chunks, scores)
    ]


def fuse_candidates(dense, sparse, query_vector, limit, config=DEFAULT_FUSION) -> list[Hit]:
    """What `ChunkStore.search` does with its two candidate lists, on candidates that carry whole
    payloads: a sparse-only candidate's cosine from its dense vector, the fused order, the newest
    version of each document."""
    q = np.asarray(query_vector, dtype=np.float64)
    q /= np.linalg.norm(q)
    cosines = {c.point_id: float(q @ (np.asarray(c.dense) / np.linalg.norm(c.dense))) for c in sparse if c.dense is not None}
    payloads = {c.point_id: c.payload for c in sparse} | {c.point_id: c.payload for c in dense}
    ranked = newest_versions(fused_order(dense, sparse, cosines, config), payloads, limit)
    return [Hit(chunk=Chunk.from_payload(payloads[r.point_id]), score=r.score, dense_score=r.dense_score,
                sparse_score=r.sparse_score) for r in ranked]


def test_rrf_prefers_chunks_ranked_well_on_both_sides():
    scope = Scope("T1", "C1")
    a, b, c = make_chunks(scope, "d.md", ["alpha", "beta", "gamma"])
    dense = _cands([a, b, c], [0.9, 0.8, 0.7])
    sparse = _cands([c, b], [5.0, 4.0], with_dense=True)
    hits = fuse_candidates(dense, sparse, qvec("beta"), limit=3, config=FusionConfig("rrf", rrf_k=60))
    assert [h.chunk.text for h in hits] == ["gamma", "beta", "alpha"]
    assert hits[2].sparse_score is None and hits[0].sparse_score == 5.0
    assert all(h.dense_score is not None for h in hits)


def test_sparse_only_candidate_gets_its_cosine_computed():
    scope = Scope("T1", "C1")
    (a,) = make_chunks(scope, "d.md", ["budget travel policy"])
    hits = fuse_candidates([], _cands([a], [3.0], with_dense=True), qvec("budget travel policy"), 5)
    assert hits[0].dense_score is not None and abs(hits[0].dense_score - 1.0) < 1e-5


def test_fusion_never_mixes_two_versions_of_a_document():
    scope = Scope("T1", "C1")
    old = make_chunks(scope, "d.md", ["old text one", "old text two"], content_hash="o", ingested_at=1.0)
    new = make_chunks(scope, "d.md", ["new text one"], content_hash="n", ingested_at=2.0)
    other = make_chunks(scope, "e.md", ["other"], ingested_at=0.5)
    dense = _cands(old + new + other, [0.9, 0.8, 0.1, 0.5])
    hits = fuse_candidates(dense, [], qvec("text"), limit=10)
    assert {h.chunk.content_hash for h in hits if h.chunk.doc_id == new[0].doc_id} == {"n"}
    assert {h.chunk.source for h in hits} == {"d.md", "e.md"}


def test_convex_fusion_weights_normalised_scores():
    scope = Scope("T1", "C1")
    a, b = make_chunks(scope, "d.md", ["alpha", "beta"])
    dense = _cands([a, b], [0.9, 0.5])
    sparse = _cands([b, a], [10.0, 1.0])
    dense_heavy = fuse_candidates(dense, sparse, qvec("x"), 2, FusionConfig("convex", dense_weight=0.8))
    sparse_heavy = fuse_candidates(dense, sparse, qvec("x"), 2, FusionConfig("convex", dense_weight=0.2))
    assert dense_heavy[0].chunk.text == "alpha" and sparse_heavy[0].chunk.text == "beta"
    assert abs(dense_heavy[0].score - 0.8) < 1e-9


def test_cosine_bm25_fusion_keeps_cosine_scale_and_relative_bm25():
    scope = Scope("T1", "C1")
    a, b = make_chunks(scope, "d.md", ["alpha", "beta"])
    dense = _cands([a, b], [0.6, 0.4])
    sparse = _cands([b], [8.0])
    hits = fuse_candidates(dense, sparse, qvec("x"), 2, FusionConfig("cosine_bm25", dense_weight=0.7))
    # b: 0.7*0.4 + 0.3*(8/8) = 0.58 ; a: 0.7*0.6 + 0 = 0.42
    assert [h.chunk.text for h in hits] == ["beta", "alpha"]
    assert hits[0].score == pytest.approx(0.58) and hits[1].score == pytest.approx(0.42)
