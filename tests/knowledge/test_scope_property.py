"""Property: whatever is stored and whatever is asked, a search never returns a chunk outside
the asker's scope — and returns every visible chunk it has room for (the filter is exact,
not merely safe)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from knowledge.edge_store import EdgeChunkStore
from knowledge.types import WORKSPACE_WIDE, Scope
from tests.knowledge.conftest import make_chunks, qvec, vectors

WORKSPACES = ["W1", "W2", "W3"]
CHANNELS = ["C1", "C2", "C3", WORKSPACE_WIDE]
WORDS = ["alpha", "budget", "travel", "policy", "secret", "llama", "deploy", "vacation", "the", "of"]

text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
document = st.tuples(
    st.sampled_from(WORKSPACES), st.sampled_from(CHANNELS), st.lists(text, min_size=1, max_size=4)
)
asker = st.builds(Scope, st.sampled_from(WORKSPACES + ["W9"]), st.sampled_from(["C1", "C2", "C3", "C9", None, WORKSPACE_WIDE]))


_examples = itertools.count()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store for every example (each example writes to workspaces of its own): opening a fresh
    shard per example would cost more than the example."""
    store = EdgeChunkStore(tmp_path_factory.mktemp("scope-property") / "edge")
    yield store
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(document, min_size=1, max_size=12),
    queries=st.lists(st.tuples(asker, text, st.integers(1, 15)), min_size=1, max_size=6),
)
def test_search_never_leaves_the_askers_scope(shared_store, docs, queries):
    store = shared_store
    example = f"x{next(_examples)}-"  # earlier examples' chunks sit in other workspaces: more to leak
    stored = []
    for i, (workspace, channel, texts) in enumerate(docs):
        chunks = make_chunks(Scope(example + workspace, channel), f"doc{i}.md", texts)
        store.add(chunks, vectors(chunks))
        stored.extend(chunks)
    for asked, query, limit in queries:
        scope = Scope(example + asked.workspace, asked.channel)
        hits = store.search(query, qvec(query), scope, limit)
        for h in hits:
            assert h.chunk.scope.workspace == scope.workspace
            assert h.chunk.scope.storage_channel in scope.visible_channels
            if scope.channel is None:  # a DM sees workspace-wide documents only
                assert h.chunk.scope.storage_channel == WORKSPACE_WIDE
        visible = [
            c for c in stored
            if c.scope.workspace == scope.workspace and c.scope.storage_channel in scope.visible_channels
        ]
        assert len(hits) == min(limit, len(visible))
        assert len({(h.chunk.doc_id, h.chunk.chunk_index) for h in hits}) == len(hits)
