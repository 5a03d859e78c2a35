"""Do the documents answer this question? One calibrated score, decided before any model call.

`AnswerabilityScorer.score(question, hits)` returns an `Answerability`: a score in [0, 1] that
reads as the probability the retrieved passages answer the question, the features it came from,
and the decision `score >= threshold` (`DOCENT_ANSWERABILITY_THRESHOLD`). The same decision gates
every answerer — Claude or the offline extractive one.

The score is a logistic regression over evidence features (`AnswerabilityFeatures`): how close
the best *sentence* of the retrieved passages is to the question (MiniLM), the best chunks'
cosine, how much of the question's salient words the evidence covers (lexically, IDF-weighted),
whether a sentence near the question holds the kind of value it asks for (`answer_types`),
whether numbers in the question appear in the evidence, how far the top BM25 score stands above
the rest, how much of the question the best single sentence covers, and how much closer the
question comes to a document linked to another channel of the workspace than to anything the asker
may read (`elsewhere_gap`: the answer lives where this channel can't see). `NAMES` lists every
candidate; the weights file says which ones it uses. The weights are trained offline by
`python -m gauges.train_answerability` on the dev split of docent's QA sets plus near misses
made from the same documents (each answerable dev question asked without its gold pages), and
record the embedding model they are valid for; with another embedder the scorer falls back to the
best dense cosine alone (`CosineScorer`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge import answer_types
from knowledge.embeddings import Embedder
from knowledge.query_vectors import QUERY_VECTORS, SENTENCE_VECTORS, QueryVectorCache, embed_through
from knowledge.text import content_terms, evidence_sentences
from knowledge.types import Hit

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).with_name("data") / "answerability_lr.json"
EVIDENCE_HITS = 5  # passages whose sentences are read
_NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?\s?[kKmM%]?")


@dataclass(frozen=True)
class Answerability:
    score: float  # calibrated: the probability that the passages answer the question
    threshold: float
    features: dict[str, float] = field(default_factory=dict, compare=False)
    best_sentence: str = ""

    @property
    def answerable(self) -> bool:
        return self.score >= self.threshold

    def __bool__(self) -> bool:
        return self.answerable


def _number_value(text: str) -> float | None:
    text = text.lower().replace("$", "").replace(",", "").strip()
    scale = 1.0
    if text.endswith("k"):
        scale, text = 1e3, text[:-1]
    elif text.endswith("m"):
        scale, text = 1e6, text[:-1]
    try:
        return float(text.rstrip("%").strip()) * scale
    except ValueError:
        return None


class AnswerabilityFeatures:
    """Evidence features of (question, hits); every one is larger when an answer is likelier."""

    NAMES = (
        "sent_top", "sent_top2", "dense_top", "dense_mean3", "lex_cov1", "lex_cov3", "lex_cov_sent2",
        "atype_gap", "nums_ok", "n_terms", "lex_cov5", "sent_cov_best", "missing_terms",
        "bm25_top", "bm25_peak", "elsewhere_gap",
    )

    def __init__(self, embedder: Embedder, *, query_vectors: QueryVectorCache | None = QUERY_VECTORS,
                 sentence_vectors: QueryVectorCache | None = SENTENCE_VECTORS):
        """The caches hold the vectors the search and the reranker computed for this question
        and its passages' sentences (None: embed them here)."""
        self.embedder = embedder
        self.query_vectors = query_vectors
        self.sentence_vectors = sentence_vectors

    def sentences(self, hits: Sequence[Hit]) -> list[tuple[int, str]]:
        return [(rank, sentence) for rank, hit in enumerate(hits[:EVIDENCE_HITS])
                for sentence in evidence_sentences(hit.chunk.text)]

    def extract(self, question: str, hits: Sequence[Hit], elsewhere: float | None = None) -> tuple[dict[str, float], str]:
        """`elsewhere`: the question's best cosine among the workspace's chunks the asker may not
        read (`ChunkStore.best_elsewhere`), None when there are none."""
        hits = list(hits)[:EVIDENCE_HITS]
        sentences = self.sentences(hits)
        texts = [s for _, s in sentences]
        q = embed_through(self.query_vectors, self.embedder, [question])[0]
        cosines = (embed_through(self.sentence_vectors, self.embedder, texts) @ q).tolist()
        ranked = sorted(zip(cosines, (s for _, s in sentences)), key=lambda x: -x[0])

        f: dict[str, float] = {}
        dense = sorted((h.dense_score or 0.0 for h in hits), reverse=True)
        f["dense_top"] = dense[0] if dense else 0.0
        f["dense_mean3"] = float(np.mean(dense[:3])) if dense else 0.0
        # Larger is likelier, like every feature: minus how far another channel's best chunk
        # stands above this scope's best (0 when it doesn't, or there is none).
        f["elsewhere_gap"] = -max(0.0, elsewhere - f["dense_top"]) if elsewhere is not None else 0.0
        f["sent_top"] = ranked[0][0] if ranked else 0.0
        f["sent_top2"] = float(np.mean([c for c, _ in ranked[:2]])) if ranked else 0.0

        # Salient words: IDF over the candidate sentences, as a reader weighs them ("leave" in a
        # leave policy says little; the one word only two sentences share says a lot).
        terms = list(dict.fromkeys(content_terms(question)))
        sentence_terms = [set(content_terms(s)) for _, s in sentences]
        n = max(len(sentence_terms), 1)
        weight = {t: math.log(1 + n / max(sum(t in st for st in sentence_terms), 0.5)) for t in terms}
        total = sum(weight.values()) or 1.0

        def covered(words: set[str]) -> float:
            return sum(w for t, w in weight.items() if t in words) / total

        def chunk_words(hit: Hit) -> set[str]:
            return set(content_terms(f"{hit.chunk.text} {hit.chunk.title} {' '.join(hit.chunk.heading_path)}"))

        f["lex_cov1"] = covered(chunk_words(hits[0])) if hits else 0.0
        f["lex_cov3"] = covered(set().union(*(chunk_words(h) for h in hits[:3]))) if hits else 0.0
        f["lex_cov_sent2"] = covered(set().union(*(set(content_terms(s)) for _, s in ranked[:2]))) if ranked else 0.0
        # The asked fact lives in one sentence: the best any single sentence covers, and how many of
        # the question's words no retrieved passage has at all (a near miss lacks the specific one).
        evidence_words = set().union(*(chunk_words(h) for h in hits)) if hits else set()
        f["lex_cov5"] = covered(evidence_words)
        f["sent_cov_best"] = max((covered(st) for st in sentence_terms), default=0.0)
        f["missing_terms"] = float(-sum(t not in evidence_words for t in terms))
        bm25 = sorted((h.sparse_score or 0.0 for h in hits), reverse=True)
        f["bm25_top"] = bm25[0] if bm25 else 0.0
        f["bm25_peak"] = (bm25[0] - float(np.mean(bm25[1:]))) / bm25[0] if len(bm25) > 1 and bm25[0] > 0 else 0.0

        kind = answer_types.asked_kind(question)
        if kind is None or not ranked:
            f["atype_gap"] = 0.0
        else:
            typed = [c for c, s in ranked if answer_types.holds(s, kind)]
            f["atype_gap"] = (typed[0] - ranked[0][0]) if typed else -0.5

        asked = [v for v in (_number_value(m) for m in _NUMBER.findall(question)) if v is not None]
        evidence = " ".join(h.chunk.text for h in hits[:3])
        present = {v for v in (_number_value(m) for m in _NUMBER.findall(evidence)) if v is not None}
        f["nums_ok"] = 1.0 if not asked else sum(v in present for v in asked) / len(asked)
        f["n_terms"] = float(len(terms))
        return f, ranked[0][1] if ranked else ""


@dataclass(frozen=True)
class AnswerabilityWeights:
    model_name: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> "AnswerabilityWeights":
        data = json.loads(Path(path).read_text())
        return cls(
            model_name=data["model_name"], features=tuple(data["features"]), mean=tuple(data["mean"]),
            scale=tuple(data["scale"]), coef=tuple(data["coef"]), intercept=float(data["intercept"]),
            threshold=float(data["threshold"]),
        )

    def probability(self, features: dict[str, float]) -> float:
        x = np.array([features[k] for k in self.features])
        z = float(((x - np.array(self.mean)) / np.array(self.scale)) @ np.array(self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-z))


# The workspace's best cosine outside the asker's scope, or a callable that finds it.
Elsewhere = float | None | Callable[[], float | None]


class CosineScorer:
    """The fallback: the best dense cosine among the hits (MiniLM: unrelated ≈ 0.0–0.2)."""

    def __init__(self, threshold: float = 0.40):
        self.threshold = threshold

    def score(self, question: str, hits: Sequence[Hit], elsewhere: Elsewhere = None) -> Answerability:
        best = max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
        return Answerability(float(best), self.threshold, {"dense_top": float(best)})


class AnswerabilityScorer:
    """The learned score over `AnswerabilityFeatures` (see the module docstring)."""

    def __init__(self, embedder: Embedder, weights: AnswerabilityWeights, threshold: float | None = None):
        if weights.model_name != embedder.model_name:
            raise ValueError(
                f"answerability weights are for {weights.model_name!r}, not {embedder.model_name!r}"
            )
        self.features = AnswerabilityFeatures(embedder)
        self.weights = weights
        self.threshold = weights.threshold if threshold is None else threshold

    def score(self, question: str, hits: Sequence[Hit], elsewhere: Elsewhere = None) -> Answerability:
        """`elsewhere`: see `AnswerabilityFeatures.extract`; a callable is called only when the
        weights use it."""
        if not hits:
            return Answerability(0.0, self.threshold, {})
        if callable(elsewhere):
            elsewhere = elsewhere() if "elsewhere_gap" in self.weights.features else None
        features, best = self.features.extract(question, hits, elsewhere)
        return Answerability(self.weights.probability(features), self.threshold, features, best)


_warned: set[str] = set()


def make_scorer(embedder: Embedder, *, threshold: float | None = None, fallback_threshold: float = 0.40,
                weights_path: Path = DEFAULT_WEIGHTS) -> AnswerabilityScorer | CosineScorer:
    """The learned scorer when its weights fit `embedder`, else the cosine fallback."""
    try:
        weights = AnswerabilityWeights.load(weights_path)
    except FileNotFoundError:
        # The shipped weights missing is a broken install, not a choice: silently falling back
        # to cosine would answer worse with no sign of why.
        raise RuntimeError(f"the answerability weights {weights_path} are missing: reinstall docent") from None
    if weights is not None and weights.model_name == embedder.model_name:
        return AnswerabilityScorer(embedder, weights, threshold)
    if embedder.model_name not in _warned:
        _warned.add(embedder.model_name)
        log.info("answerability: no weights for %s; using the best dense cosine (threshold %.2f)",
                 embedder.model_name, fallback_threshold)
    return CosineScorer(fallback_threshold)
