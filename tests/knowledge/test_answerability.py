"""The answerability score's evidence features, its weights, and the gate it makes."""

from __future__ import annotations

import json

import pytest

from knowledge.answerability import (
    DEFAULT_WEIGHTS,
    AnswerabilityFeatures,
    AnswerabilityScorer,
    AnswerabilityWeights,
    CosineScorer,
    make_scorer,
)
from knowledge.embeddings import HashEmbeddings
from knowledge.types import Hit, Scope
from tests.knowledge.conftest import make_chunks

SCOPE = Scope("T1", None)


def hits_of(texts: list[str], sparse: list[float | None] | None = None) -> list[Hit]:
    chunks = make_chunks(SCOPE, "policy.md", texts)
    sparse = sparse or [None] * len(texts)
    return [Hit(chunk=c, score=1.0 / (i + 1), dense_score=0.5, sparse_score=s)
            for i, (c, s) in enumerate(zip(chunks, sparse))]


@pytest.fixture
def features():
    return AnswerabilityFeatures(HashEmbeddings())


def test_the_best_single_sentence_coverage_needs_the_words_together(features):
    question = "how many vacation days carry over into january"
    together, _ = features.extract(question, hits_of([
        "Up to five vacation days carry over into January. Travel is booked through the desk.",
    ]))
    apart, _ = features.extract(question, hits_of([
        "Vacation days are granted monthly. Unused ones carry over. January starts the pay year.",
    ]))
    assert together["sent_cov_best"] == pytest.approx(1.0)
    assert apart["sent_cov_best"] < 0.6
    # Over the whole passage both cover the words: only the sentence-level feature tells them apart.
    assert together["lex_cov1"] == apart["lex_cov1"] == pytest.approx(1.0)


def test_words_no_passage_has_are_counted_against_the_question(features):
    f, _ = features.extract("is tsa precheck reimbursed on travel", hits_of([
        "Travel expenses such as taxis and baggage fees are reimbursed after the trip.",
    ]))
    assert f["missing_terms"] == -2.0  # "tsa" and "precheck"; "reimbursed" and "travel" are there


def test_bm25_peak_is_how_far_the_top_keyword_score_stands_above_the_rest(features):
    question = "how are train tickets booked"
    peaked, _ = features.extract(question, hits_of(["Trains are booked.", "Taxis.", "Hotels."], [10.0, 2.0, 2.0]))
    flat, _ = features.extract(question, hits_of(["Trains are booked.", "Taxis.", "Hotels."], [4.0, 4.0, 4.0]))
    dense_only, _ = features.extract(question, hits_of(["Trains are booked.", "Taxis."]))
    assert peaked["bm25_peak"] == pytest.approx(0.8) and peaked["bm25_top"] == 10.0
    assert flat["bm25_peak"] == 0.0
    assert dense_only["bm25_peak"] == 0.0 and dense_only["bm25_top"] == 0.0  # no keyword side at all


def test_another_channel_coming_closer_counts_against_the_question(features):
    question = "how are train tickets booked"
    hits = hits_of(["Trains are booked."])  # best dense cosine 0.5 (hits_of)
    closer, _ = features.extract(question, hits, elsewhere=0.8)
    farther, _ = features.extract(question, hits, elsewhere=0.3)
    nowhere, _ = features.extract(question, hits, elsewhere=None)
    assert closer["elsewhere_gap"] == pytest.approx(-0.3)
    assert farther["elsewhere_gap"] == 0.0 and nowhere["elsewhere_gap"] == 0.0
    # Nothing else moves: the passages are the same.
    assert {k: v for k, v in closer.items() if k != "elsewhere_gap"} == {k: v for k, v in nowhere.items() if k != "elsewhere_gap"}


def test_the_scorer_looks_elsewhere_only_when_its_weights_use_it(tmp_path):
    embedder = HashEmbeddings()
    question = "how many vacation days carry over into january"
    hits = hits_of(["Up to five vacation days carry over into January."])
    asked: list[int] = []

    def elsewhere() -> float:
        asked.append(1)
        return 0.95

    without = make_scorer(embedder, weights_path=_weights(tmp_path, embedder.model_name, 2.0))
    assert without.score(question, hits, elsewhere=elsewhere).answerable and not asked
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"model_name": embedder.model_name, "features": ["sent_cov_best", "elsewhere_gap"],
                                "mean": [0.5, -0.05], "scale": [0.25, 0.1], "coef": [2.0, 2.0], "intercept": 0.0,
                                "threshold": 0.5}))
    scorer = make_scorer(embedder, weights_path=path)
    here = scorer.score(question, hits, elsewhere=lambda: None)
    there = scorer.score(question, hits, elsewhere=elsewhere)
    assert asked == [1]
    assert here.answerable and not there.answerable
    assert there.features["elsewhere_gap"] == pytest.approx(-0.45)


def test_every_feature_name_is_computed_and_the_shipped_weights_use_only_those(features):
    f, best = features.extract("how many vacation days carry over", hits_of(["Five vacation days carry over."]))
    assert set(f) == set(AnswerabilityFeatures.NAMES)
    assert best == "Five vacation days carry over."
    shipped = AnswerabilityWeights.load(DEFAULT_WEIGHTS)
    assert set(shipped.features) <= set(AnswerabilityFeatures.NAMES)
    assert len(shipped.features) == len(shipped.coef) == len(shipped.mean) == len(shipped.scale)
    assert 0.0 < shipped.threshold < 1.0


def _weights(tmp_path, model_name: str, coef: float):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"model_name": model_name, "features": ["sent_cov_best"], "mean": [0.5],
                                "scale": [0.25], "coef": [coef], "intercept": 0.0, "threshold": 0.5}))
    return path


def test_the_learned_score_rises_with_its_evidence_and_gates_at_its_threshold(tmp_path):
    embedder = HashEmbeddings()
    scorer = make_scorer(embedder, weights_path=_weights(tmp_path, embedder.model_name, 2.0))
    assert isinstance(scorer, AnswerabilityScorer)
    question = "how many vacation days carry over into january"
    good = scorer.score(question, hits_of(["Up to five vacation days carry over into January."]))
    poor = scorer.score(question, hits_of(["The office kitchen is cleaned on Fridays."]))
    assert good.score > 0.8 and good.answerable
    assert poor.score < 0.2 and not poor.answerable
    assert scorer.score(question, []).score == 0.0


def test_weights_for_another_model_fall_back_to_the_cosine_gate(tmp_path):
    scorer = make_scorer(HashEmbeddings(), weights_path=_weights(tmp_path, "some-other-model", 2.0))
    assert isinstance(scorer, CosineScorer)


def test_missing_weights_raise_rather_than_gate_on_cosine_alone(tmp_path):
    with pytest.raises(RuntimeError, match="missing"):
        make_scorer(HashEmbeddings(), weights_path=tmp_path / "nowhere.json")
