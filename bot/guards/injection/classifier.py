"""The embedding layer: logistic regression over sentence embeddings.

Weights are trained offline by `gauges.train_injection` and shipped as numbers in
`bot/guards/data/injection_lr.json`, together with the identity of the model they were
trained for (`model_name`, `dim`). Vectors of another model would give meaningless scores,
so the classifier refuses such an embedder, and the default detectors use their embedding
layers only for the model the weights name.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bot.guards.injection.heuristic import HeuristicDetector
from bot.guards.injection.verdict import CombinedDetector, InjectionDetector, ThreatLevel, Verdict
from bot.guards.normalize import normalize_text, revealed_tags

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from knowledge.embeddings import Embedder

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).parent.parent / "data" / "injection_lr.json"
RETRAIN_HINT = "retrain with `python -m gauges.train_injection PATH/deepset_train.jsonl`"


@dataclass(frozen=True)
class LogisticWeights:
    model_name: str  # the `Embedder.model_name` the weights were trained with
    dim: int
    coef: tuple[float, ...]
    intercept: float
    threshold_low: float
    threshold_medium: float
    threshold_high: float

    def __post_init__(self) -> None:
        if len(self.coef) != self.dim:
            raise ValueError(f"injection classifier weights have {len(self.coef)} coefficients for dim {self.dim}")

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> "LogisticWeights":
        data = json.loads(Path(path).read_text())
        missing = [key for key in ("model_name", "dim") if key not in data]
        if missing:
            raise ValueError(f"{path} does not say which embedding model it was trained for (no {', '.join(missing)}); {RETRAIN_HINT}")
        return cls(
            model_name=str(data["model_name"]),
            dim=int(data["dim"]),
            coef=tuple(float(x) for x in data["coef"]),
            intercept=float(data["intercept"]),
            threshold_low=float(data["threshold_low"]),
            threshold_medium=float(data["threshold_medium"]),
            threshold_high=float(data["threshold_high"]),
        )

    def fits(self, embedder: Embedder) -> bool:
        """Whether `embedder` makes the vectors these weights were trained on."""
        return embedder.model_name == self.model_name and embedder.dim == self.dim


@lru_cache(maxsize=1)
def shipped_weights() -> LogisticWeights | None:
    """The packaged weights, read once per process; None when the file is not there."""
    return LogisticWeights.load(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else None


def embedding_layers_apply(embedder: Embedder) -> bool:
    """Whether the shipped weights (and the thresholds tuned with them) were made for `embedder`.

    When not, the embedding layers are skipped and the patterns carry on alone; that is said
    once per process and model at INFO (a test or offline setup, not a fault).
    """
    weights = shipped_weights()
    if weights is not None and weights.fits(embedder):
        return True
    _log_fallback(embedder.model_name, embedder.dim, weights.model_name if weights else None, weights.dim if weights else 0)
    return False


@lru_cache(maxsize=None)
def _log_fallback(model_name: str, dim: int, trained_for: str | None, trained_dim: int) -> None:
    if trained_for is None:
        log.info("injection guard: no classifier weights at %s; using patterns only", DEFAULT_WEIGHTS)
    else:
        log.info(
            "injection guard: embedder %s (%d dims) is not %s (%d dims), the model the classifier was "
            "trained for; using patterns only",
            model_name, dim, trained_for, trained_dim,
        )


class EmbeddingClassifierDetector:
    """Logistic regression over normalised sentence embeddings of the model the weights name.

    `embedder` is any LangChain `Embeddings` (wrapped in docent's `Embedder` if it is not one);
    its `model_name` and `dim` must be those the weights were trained for.
    """

    def __init__(self, embedder: Embeddings, weights: LogisticWeights | None = None):
        from knowledge.embeddings import as_embedder

        self.embedder = as_embedder(embedder)
        self.weights = weights or LogisticWeights.load()
        if not self.weights.fits(self.embedder):
            raise ValueError(
                f"injection classifier weights were trained for {self.weights.model_name} "
                f"({self.weights.dim} dims), not for the embedder's {self.embedder.model_name} "
                f"({self.embedder.dim} dims); {RETRAIN_HINT} for that model"
            )

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


def default_detector(embedder: Embeddings | None = None) -> InjectionDetector:
    """The question detector: heuristics, plus the embedding classifier when `embedder` is the
    model the shipped weights were trained for (any other embedder: heuristics only)."""
    heuristic = HeuristicDetector()
    if embedder is None:
        return heuristic
    from knowledge.embeddings import as_embedder

    embedder = as_embedder(embedder)
    if not embedding_layers_apply(embedder):
        return heuristic
    return CombinedDetector([heuristic, EmbeddingClassifierDetector(embedder, shipped_weights())])
