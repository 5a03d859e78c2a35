"""Prompt-injection detection (OWASP LLM01) for questions and for documents at ingest.

One module per concern; each layer is measurable on its own (`python -m gauges.injection`):

* `verdict` — `ThreatLevel`, `Verdict`, `BLOCKING_LEVEL`, and `combine` / `CombinedDetector`
  (defense in depth: the highest level any layer reports).
* `patterns` — the weighted regular expressions: direct injections and document ones.
* `heuristic` — `HeuristicDetector`, the patterns combined by noisy-OR, run on the normalized
  text *and* on whatever was smuggled in Unicode tag characters.
* `classifier` — `EmbeddingClassifierDetector`, logistic regression over sentence embeddings
  averaged with one over character n-grams (shipped weights), and `default_detector`, the
  question detector.
* `documents` — `DocumentScanner` / `scan_document`: indirect (BIPIA-style) injection, passages
  of a document that address the assistant rather than the reader.

What to do with a level (block / warn / log) is the pipeline's decision
(`settings.injection_action`); `BLOCKING_LEVEL` is the level from which the evaluation counts
a text as detected and from which the pipeline should act.
"""

from bot.guards.injection.classifier import (
    DEFAULT_WEIGHTS,
    EmbeddingClassifierDetector,
    LogisticWeights,
    default_detector,
)
from bot.guards.injection.documents import (
    DocumentScanner,
    Finding,
    document_detector,
    document_passages,
    is_flagged,
    is_request_shaped,
    scan_document,
)
from bot.guards.injection.heuristic import HeuristicDetector, without_urls
from bot.guards.injection.patterns import DIRECT_PATTERNS, DOCUMENT_PATTERNS, InjectionPattern
from bot.guards.injection.verdict import (
    BLOCKING_LEVEL,
    CLEAN,
    CombinedDetector,
    InjectionDetector,
    ThreatLevel,
    Verdict,
    combine,
    detect_many,
    level_for_score,
)

__all__ = [
    "BLOCKING_LEVEL",
    "CLEAN",
    "DEFAULT_WEIGHTS",
    "DIRECT_PATTERNS",
    "DOCUMENT_PATTERNS",
    "CombinedDetector",
    "DocumentScanner",
    "EmbeddingClassifierDetector",
    "Finding",
    "HeuristicDetector",
    "InjectionDetector",
    "InjectionPattern",
    "LogisticWeights",
    "ThreatLevel",
    "Verdict",
    "combine",
    "default_detector",
    "detect_many",
    "document_detector",
    "document_passages",
    "is_flagged",
    "is_request_shaped",
    "level_for_score",
    "scan_document",
    "without_urls",
]
