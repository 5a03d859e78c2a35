"""The spelling-scale gauge: many channels of one workspace ask, the workspace-wide words are read once."""

from __future__ import annotations

from gauges.spelling_scale import measure
from knowledge.edge_store import EdgeChunkStore
from knowledge.types import WORKSPACE_WIDE, Scope
from tests.knowledge.conftest import make_chunks, vectors


def test_measure_asks_from_every_channel_and_reads_the_shared_words_once(tmp_path):
    store = EdgeChunkStore(tmp_path / "edge")
    try:
        chunks = make_chunks(Scope.workspace_wide("T1"), "policy.md", ["Rotate the password often: every ninety days."])
        store.add(chunks, vectors(chunks))
        reads = []
        texts = store.channel_texts
        store.channel_texts = lambda workspace, channel: reads.append(channel) or texts(workspace, channel)
        result = measure(store, "T1", channels=5)
    finally:
        store.close()
    assert result["channels"] == 5 and result["total_s"] >= 0
    assert result["first_question_max_ms"] >= result["first_question_p50_ms"] >= 0
    assert reads.count(WORKSPACE_WIDE) == 1 and len(reads) == 6  # once, plus each channel's own


def test_the_synthetic_workspace_is_read_whole_and_its_first_question_answered(tmp_path):
    from gauges.spelling_scale import synthetic

    result = synthetic(300, tmp_path)
    assert result["chunks"] == 300 and result["distinct_words"] > 1000  # generated text over a 60k-word vocabulary
    assert result["first_read_s"] >= 0 and result["first_question_s"] >= 0
