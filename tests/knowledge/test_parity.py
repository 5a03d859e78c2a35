"""Edge and qdrant-client (local mode) hold the same data and rank it the same way: same
vectors, same payload, same scope filter, same fusion → identical top results."""

from __future__ import annotations

import random

import pytest

from knowledge.edge_store import EdgeChunkStore
from knowledge.fusion import FusionConfig
from knowledge.server_store import QdrantServerStore
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks, qvec, vectors

WORDS = (
    "budget travel expense policy laptop security password vacation leave holiday onboarding "
    "contract invoice payroll benefits insurance remote office meeting deadline review "
    "release deploy incident outage backup database server network printer badge parking"
).split()

SCOPES = [Scope("T1", "C1"), Scope("T1", "C2"), Scope.workspace_wide("T1"), Scope("T2", "C1")]
QUERIES = ["travel budget", "password security laptop", "vacation leave policy",
           "incident outage database", "parking badge office", "the payroll"]


def _corpus(rng: random.Random):
    docs = []
    for d in range(40):
        scope = SCOPES[d % len(SCOPES)]
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + f" item{d}x{i}"
                 for i in range(rng.randint(1, 4))]
        docs.append(make_chunks(scope, f"doc{d}.md", texts, ingested_at=float(d)))
    return docs


@pytest.fixture(params=[FusionConfig("rrf"), FusionConfig("convex", dense_weight=0.5),
                        FusionConfig("cosine_bm25", dense_weight=0.5)], ids=lambda f: f.method)
def stores(request, tmp_path):
    edge = EdgeChunkStore(tmp_path / "edge", fusion=request.param)
    server = QdrantServerStore(location=":memory:", collection="parity", fusion=request.param)
    for chunks in _corpus(random.Random(7)):
        vec = vectors(chunks)
        edge.add(chunks, vec)
        server.add(chunks, vec)
    yield edge, server
    edge.close()
    server.close()


@pytest.mark.parametrize("scope", SCOPES + [Scope("T1", None)], ids=str)
def test_same_top_results_in_both_stores(stores, scope):
    edge, server = stores
    for query in QUERIES:
        a = edge.search(query, qvec(query), scope, limit=8)
        b = server.search(query, qvec(query), scope, limit=8)
        assert a, f"no results for {query!r} in {scope}"
        assert [(h.chunk.doc_id, h.chunk.chunk_index) for h in a] == [
            (h.chunk.doc_id, h.chunk.chunk_index) for h in b
        ], query
        for x, y in zip(a, b):
            assert x.score == pytest.approx(y.score, rel=1e-5, abs=1e-6)
            assert x.dense_score == pytest.approx(y.dense_score, abs=1e-5)
            if x.sparse_score is None:
                assert y.sparse_score is None
            else:
                assert x.sparse_score == pytest.approx(y.sparse_score, rel=1e-4)


def test_same_listing_and_counts(stores):
    edge, server = stores
    assert edge.count() == server.count()
    for scope in SCOPES:
        assert edge.documents(scope) == server.documents(scope)
