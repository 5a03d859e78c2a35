"""With the real all-MiniLM-L6-v2, on every backend users can pick: paraphrases with no shared
words find the right chunk, and off-topic questions fall under the relevance threshold."""

from __future__ import annotations

import pytest

from knowledge.edge_store import EdgeChunkStore
from knowledge.retriever import HybridRetriever
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks

pytestmark = pytest.mark.realmodel

TEXTS = {
    "leave.md": "Employees accrue four hours of paid vacation for every two weeks worked.",
    "laptop.md": "Report a lost or stolen computer to the security team within one hour.",
    "travel.md": "Airfare must be booked in economy class through the approved agency.",
    "deploy.md": "Production releases happen on Tuesdays after the change review board approves them.",
    "lunch.md": "The cafeteria serves vegetarian meals every Friday.",
}
SCOPE = Scope("T1", "C1")


@pytest.fixture(scope="module", params=["torch", "onnx-int8"])
def embedder(request, onnx_cache_dir):
    from knowledge.embeddings import make_embedder

    try:
        return make_embedder(backend=request.param, cache_dir=onnx_cache_dir)
    except (ImportError, FileNotFoundError) as e:  # pragma: no cover - model package missing
        pytest.skip(f"real model unavailable: {e}")


@pytest.fixture
def retriever(embedder, tmp_path):
    store = EdgeChunkStore(tmp_path / "edge")
    for name, text in TEXTS.items():
        chunks = make_chunks(SCOPE, name, [text])
        store.add(chunks, embedder.embed_array([text]))
    # One-sentence documents score lower than real chunks (which carry their title and
    # headings): the product default (0.40, calibrated on the handbook QA set) is for those.
    yield HybridRetriever(store=store, embedder=embedder, scope=SCOPE, k=3, relevance_threshold=0.35)
    store.close()


@pytest.mark.parametrize(
    "question, source",
    [
        ("How much holiday time do I build up?", "leave.md"),
        ("My notebook PC got nicked, who do I tell?", "laptop.md"),
        ("Are premium plane tickets allowed?", "travel.md"),
        ("When do we ship code to prod?", "deploy.md"),
    ],
)
def test_paraphrase_finds_the_right_chunk(retriever, question, source):
    hits = retriever.search(question)
    assert hits[0].chunk.source == source
    assert retriever.answerable(hits)


def test_off_topic_question_is_not_answerable(retriever):
    hits = retriever.search("What is the boiling point of liquid nitrogen on Mars?")
    assert hits  # the store always returns its nearest chunks…
    assert not retriever.answerable(hits)  # …but none is close enough to answer from


def test_a_question_another_channels_document_answers_scores_lower_in_this_channel(embedder, tmp_path):
    """The shipped answerability score with the real model: asked where only a near document is
    visible, a question that a document linked to another channel answers closely scores lower
    than over the same passages with nothing elsewhere; asked in that channel, nothing comes
    closer elsewhere."""
    from knowledge.answerability import make_scorer

    store = EdgeChunkStore(tmp_path / "edge")
    here, there = Scope("T1", "C1"), Scope("T1", "C2")
    placed = {here: TEXTS["travel.md"],
              there: "Passport and visa fees for official travel are reimbursed through the travel desk."}
    for scope, text in placed.items():
        store.add(make_chunks(scope, f"{scope.channel}.md", [text]), embedder.embed_array([text]))
    scorer = make_scorer(embedder)
    question = "are visa fees for work trips reimbursed?"
    try:
        asked_here = HybridRetriever(store=store, embedder=embedder, scope=here)
        hits = asked_here.search(question)
        assert [h.chunk.source for h in hits] == ["C1.md"]
        elsewhere = asked_here.best_elsewhere(question)
        assert elsewhere is not None and elsewhere > hits[0].dense_score
        looked = scorer.score(question, hits, elsewhere=lambda: asked_here.best_elsewhere(question))
        blind = scorer.score(question, hits, elsewhere=None)
        assert looked.features["elsewhere_gap"] < 0 and blind.features["elsewhere_gap"] == 0.0
        assert looked.score < blind.score

        asked_there = HybridRetriever(store=store, embedder=embedder, scope=there)
        hits = asked_there.search(question)
        assert hits[0].chunk.source == "C2.md"
        assert scorer.score(question, hits, elsewhere=lambda: asked_there.best_elsewhere(question)).features[
            "elsewhere_gap"] == 0.0
    finally:
        store.close()
