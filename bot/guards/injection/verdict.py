"""Threat levels, verdicts, and how several detectors' verdicts combine into one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, Sequence, runtime_checkable


class ThreatLevel(IntEnum):
    none = 0
    low = 1
    medium = 2
    high = 3


# A text at or above this level counts as an injection (evaluation) and triggers the
# configured action (pipeline). `low` is logged only: it marks suspicious but common phrasing.
BLOCKING_LEVEL = ThreatLevel.medium


@dataclass(frozen=True)
class Verdict:
    level: ThreatLevel
    score: float  # 0..1, comparable within one detector
    reasons: tuple[str, ...]

    @property
    def is_injection(self) -> bool:
        return self.level >= BLOCKING_LEVEL


CLEAN = Verdict(ThreatLevel.none, 0.0, ())


@runtime_checkable
class InjectionDetector(Protocol):
    def detect(self, text: str) -> Verdict: ...


def level_for_score(score: float) -> ThreatLevel:
    if score >= 0.8:
        return ThreatLevel.high
    if score >= 0.5:
        return ThreatLevel.medium
    if score >= 0.25:
        return ThreatLevel.low
    return ThreatLevel.none


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    level = max((v.level for v in verdicts), default=ThreatLevel.none)
    score = max((v.score for v in verdicts), default=0.0)
    reasons = tuple(r for v in verdicts for r in v.reasons)
    return Verdict(level, score, reasons)


def detect_many(detector: InjectionDetector, texts: Sequence[str]) -> list[Verdict]:
    """Batch detection when the detector supports it (embeddings batch well), else one by one."""
    if hasattr(detector, "detect_many"):
        return detector.detect_many(texts)
    return [detector.detect(t) for t in texts]


class CombinedDetector:
    """Defense in depth: the highest level any layer reports, with every layer's reasons."""

    def __init__(self, layers: Sequence[InjectionDetector]):
        if not layers:
            raise ValueError("CombinedDetector needs at least one layer")
        self.layers = tuple(layers)

    def detect(self, text: str) -> Verdict:
        return combine([layer.detect(text) for layer in self.layers])

    def detect_many(self, texts: Sequence[str]) -> list[Verdict]:
        per_layer = [detect_many(layer, texts) for layer in self.layers]
        return [combine(vs) for vs in zip(*per_layer)]
