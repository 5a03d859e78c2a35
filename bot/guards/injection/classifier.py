"""The statistical layer: two logistic regressions, averaged in logit space.

* over the sentence embedding of the question (the embedder the product already runs), and
* over character n-gram TF-IDF of the question, which sees the wording the embedding blurs
  (the German and role-play attacks of the public sets, "ignore" next to "instructions").

Each view alone trades detection for false positives on honest work questions worse than the
two together (see `gauges.train_injection`, which trains both offline and chooses the
thresholds). The numbers are shipped in `bot/guards/data/injection_lr.json` with the identity of
the embedding model they were trained for (`model_name`, `dim`): vectors of another model would
give meaningless scores, so the classifier refuses such an embedder, and the default detectors
use their statistical layers only for the model the weights name.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from bot.guards.injection.heuristic import HeuristicDetector
from bot.guards.injection.verdict import CombinedDetector, InjectionDetector, ThreatLevel, Verdict
from bot.guards.normalize import normalize_text, revealed_tags

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from knowledge.embeddings import Embedder

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).parent.parent / "data" / "injection_lr.json"
RETRAIN_HINT = "retrain with `python -m gauges.train_injection PATH/deepset_train.jsonl --benign FILE[:FIELD] …` (see gauges/train_injection.py)"


def classifier_text(text: str) -> str:
    """What the classifier reads (and is trained on): the normalized text plus anything smuggled
    in Unicode tag characters."""
    smuggled = revealed_tags(text)
    return normalize_text(text) + (" " + smuggled if smuggled else "")


def char_wb_ngrams(text: str, low: int, high: int) -> Iterator[str]:
    """Character n-grams inside word boundaries, exactly as scikit-learn's `analyzer="char_wb"`
    (lowercased; each word padded with one space). Re-implemented so that the guard does not
    need scikit-learn at run time; a test checks it against scikit-learn."""
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if len(padded) <= n:  # a short word counts once, whole
                yield padded
                break
            for start in range(len(padded) - n + 1):
                yield padded[start : start + n]


@dataclass(frozen=True)
class CharNgramWeights:
    """Logistic regression over TF-IDF of character n-grams (sublinear tf, idf, l2 norm)."""

    ngram_range: tuple[int, int]
    grams: tuple[str, ...]
    idf: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        if not len(self.grams) == len(self.idf) == len(self.coef):
            raise ValueError("injection n-gram weights need one idf and one coefficient per n-gram")

    @cached_property
    def _columns(self) -> dict[str, int]:
        return {gram: i for i, gram in enumerate(self.grams)}

    def decision(self, texts: Sequence[str]) -> list[float]:
        """The logit for each text."""
        columns, low, high = self._columns, *self.ngram_range
        out = []
        for text in texts:
            counts = Counter(c for c in (columns.get(g) for g in char_wb_ngrams(text, low, high)) if c is not None)
            tfidf = {c: (1.0 + math.log(n)) * self.idf[c] for c, n in counts.items()}
            norm = math.sqrt(sum(v * v for v in tfidf.values()))
            dot = sum(v * self.coef[c] for c, v in tfidf.items())
            out.append(self.intercept + (dot / norm if norm else 0.0))
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "CharNgramWeights":
        low, high = data["ngram_range"]
        return cls(
            ngram_range=(int(low), int(high)),
            grams=tuple(str(g) for g in data["grams"]),
            idf=tuple(float(x) for x in data["idf"]),
            coef=tuple(float(x) for x in data["coef"]),
            intercept=float(data["intercept"]),
        )


@dataclass(frozen=True)
class LogisticWeights:
    model_name: str  # the `Embedder.model_name` the weights were trained with
    dim: int
    coef: tuple[float, ...]
    intercept: float
    threshold_low: float
    threshold_medium: float
    threshold_high: float
    # The n-gram view; None in weights trained before it (the embedding view alone then).
    ngrams: CharNgramWeights | None = None

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
            ngrams=CharNgramWeights.from_record(data["ngrams"]) if data.get("ngrams") else None,
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
    """The statistical layer: logistic regression over sentence embeddings of the model the
    weights name, averaged in logit space with the one over character n-grams (when the
    weights have it). The thresholds apply to that average.

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
        if len(texts) == 1:
            # An asked question: retrieval embeds the same words next, and reuses this vector.
            from knowledge.query_vectors import QUERY_VECTORS

            x = QUERY_VECTORS.vector(self.embedder, texts[0])[None, :]
        else:
            x = self.embedder.embed_array(list(texts))
        z = x.astype(np.float64) @ np.asarray(self.weights.coef) + self.weights.intercept
        if self.weights.ngrams is not None:
            z = (z + np.asarray(self.weights.ngrams.decision(texts))) / 2
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
        return [self.verdict_for(p) for p in self.probabilities([classifier_text(t) for t in texts])]


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
