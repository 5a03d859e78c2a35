"""The embedding layer: logistic regression over sentence embeddings.

Weights are trained offline by `bot.guards.train_injection` and shipped as numbers in
`bot/guards/data/injection_lr.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bot.guards.injection.heuristic import HeuristicDetector
from bot.guards.injection.verdict import CombinedDetector, InjectionDetector, ThreatLevel, Verdict
from bot.guards.normalize import normalize_text, revealed_tags

DEFAULT_WEIGHTS = Path(__file__).parent.parent / "data" / "injection_lr.json"


@dataclass(frozen=True)
class LogisticWeights:
    coef: tuple[float, ...]
    intercept: float
    threshold_low: float
    threshold_medium: float
    threshold_high: float

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> "LogisticWeights":
        data = json.loads(Path(path).read_text())
        return cls(
            coef=tuple(float(x) for x in data["coef"]),
            intercept=float(data["intercept"]),
            threshold_low=float(data["threshold_low"]),
            threshold_medium=float(data["threshold_medium"]),
            threshold_high=float(data["threshold_high"]),
        )


class EmbeddingClassifierDetector:
    """Logistic regression over sentence embeddings (all-MiniLM-L6-v2, 384 dims, normalised).

    `embedder` is any LangChain `Embeddings`; weights were trained for MiniLM, so another
    model gives meaningless scores.
    """

    def __init__(self, embedder, weights: LogisticWeights | None = None):
        from knowledge.embeddings import as_embedder

        self.embedder = as_embedder(embedder)
        self.weights = weights or LogisticWeights.load()
        if len(self.weights.coef) != self.embedder.dim:
            raise ValueError("injection classifier weights do not match the embedder's dimension")

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        if not texts:
            return []
        x = self.embedder.embed_array(list(texts))
        z = x @ np.asarray(self.weights.coef, dtype=np.float32) + self.weights.intercept
        return [1.0 / (1.0 + math.exp(-float(v))) for v in z]

    def verdict_for(self, probability: float) -> Verdict:
        w = self.weights
        if probability >= w.threshold_high:
            level = ThreatLevel.high
        elif probability >= w.threshold_medium:
            level = ThreatLevel.medium
        elif probability >= w.threshold_low:
            level = ThreatLevel.low
        else:
            return Verdict(ThreatLevel.none, round(probability, 4), ())
        return Verdict(level, round(probability, 4), ("embedding_classifier",))

    def detect(self, text: str) -> Verdict:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[Verdict]:
        cleaned = [normalize_text(t) + (" " + revealed_tags(t) if revealed_tags(t) else "") for t in texts]
        return [self.verdict_for(p) for p in self.probabilities(cleaned)]


def default_detector(embedder=None) -> InjectionDetector:
    """Heuristics alone, or heuristics + the embedding classifier when an embedder is given.

    The classifier's weights only mean something for MiniLM; a `HashEmbeddings` (tests) gets
    the heuristic layer only.
    """
    heuristic = HeuristicDetector()
    if embedder is None or type(embedder).__name__ == "HashEmbeddings" or not DEFAULT_WEIGHTS.exists():
        return heuristic
    return CombinedDetector([heuristic, EmbeddingClassifierDetector(embedder)])
