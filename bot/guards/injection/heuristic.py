"""The heuristic layer: weighted patterns, combined by noisy-OR into a score, mapped to a level.

Runs on the normalized text *and* on whatever was smuggled in Unicode tag characters.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from bot.guards.injection.patterns import DIRECT_PATTERNS, InjectionPattern
from bot.guards.injection.verdict import Verdict, level_for_score
from bot.guards.normalize import has_hidden_characters, normalize_text, revealed_tags

# URLs are data, not instructions; their long random paths would look like encoded payloads.
_URL = re.compile(r"(?:https?://|www\.)[^\s)\]>\"']+", re.IGNORECASE)


def without_urls(text: str) -> str:
    return _URL.sub("<url>", text)


def _noisy_or(weights: Iterable[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


class HeuristicDetector:
    """Weighted patterns, combined by noisy-OR into a score, mapped to a level."""

    def __init__(self, patterns: Sequence[InjectionPattern] = DIRECT_PATTERNS):
        self.patterns = tuple(patterns)

    def matches(self, text: str) -> list[InjectionPattern]:
        return [p for p in self.patterns if p.regex.search(text)]

    def detect(self, text: str) -> Verdict:
        views = [without_urls(normalize_text(text))]
        smuggled = revealed_tags(text)
        if smuggled:
            views.append(without_urls(normalize_text(smuggled)))
        hit: dict[str, InjectionPattern] = {}
        for view in views:
            for p in self.matches(view):
                hit[p.name] = p
        reasons = sorted(hit)
        score = _noisy_or(p.weight for p in hit.values())
        if smuggled:
            # Hidden tag text is never legitimate in a question or a document.
            reasons.append("smuggled_tag_characters")
            score = max(score, 0.6)
        elif has_hidden_characters(text) and score > 0:
            reasons.append("hidden_characters")
            score = _noisy_or([score, 0.3])
        return Verdict(level_for_score(score), round(score, 4), tuple(reasons))
