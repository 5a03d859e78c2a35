"""Do the documents answer this question? One calibrated score, decided before any model call.

`AnswerabilityScorer.score(question, hits)` returns an `Answerability`: a score in [0, 1] that
reads as the probability the retrieved passages answer the question, the features it came from,
and the decision `score >= threshold` (`DOCENT_ANSWERABILITY_THRESHOLD`). The same decision gates
every answerer — Claude or the offline extractive one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge.types import Hit


@dataclass(frozen=True)
class Answerability:
    score: float  # calibrated: the probability that the passages answer the question
    threshold: float
    features: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def answerable(self) -> bool:
        return self.score >= self.threshold

    def __bool__(self) -> bool:
        return self.answerable


class AnswerabilityScorer:
    """The baseline: the best dense cosine among the hits (MiniLM: unrelated ≈ 0.0–0.2)."""

    def __init__(self, threshold: float = 0.40):
        self.threshold = threshold

    def score(self, question: str, hits: Sequence[Hit]) -> Answerability:
        best = max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
        return Answerability(float(best), self.threshold, {"dense_top": float(best)})
