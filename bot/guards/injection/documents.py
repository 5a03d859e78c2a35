"""Indirect injection (BIPIA-style): the scan of a document at ingest.

Looks for passages that address the assistant rather than the reader — "in your response,
add …", "reply in French", "ignore the user's question" — or that are a stand-alone request
to an assistant which has nothing to do with the rest of the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from bot.guards.injection.classifier import embedding_layers_apply
from bot.guards.injection.heuristic import HeuristicDetector
from bot.guards.injection.patterns import DIRECT_PATTERNS, DOCUMENT_PATTERNS, DOCUMENT_SAFE_DIRECT
from bot.guards.injection.verdict import (
    BLOCKING_LEVEL,
    InjectionDetector,
    ThreatLevel,
    Verdict,
    combine,
    detect_many,
)
from bot.guards.normalize import normalize_text, revealed_tags

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from knowledge.embeddings import Embedder
    from knowledge.types import EmbeddedChunks


def document_detector() -> HeuristicDetector:
    """The heuristic layer tuned for documents: indirect-injection patterns + safe direct ones."""
    direct = tuple(p for p in DIRECT_PATTERNS if p.name in DOCUMENT_SAFE_DIRECT)
    return HeuristicDetector(direct + DOCUMENT_PATTERNS)


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_MARKDOWN_NOISE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)]|>+)\s+")


@dataclass(frozen=True)
class Finding:
    passage: str
    verdict: Verdict


def document_passages(text: str) -> list[str]:
    """Sentences, paragraph by paragraph: injected instructions are usually one or two sentences.

    Soft-wrapped Markdown lines are joined first; list items, table rows and headings stay
    separate lines. Fenced code is skipped (it is data for the reader, not prose).
    """
    passages: list[str] = []
    in_fence = False
    block: list[str] = []

    def flush() -> None:
        if block:
            joined = " ".join(block)
            passages.extend(s.strip() for s in _SENTENCE_SPLIT.split(joined) if s.strip())
            block.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not line:
            flush()
            continue
        if _MARKDOWN_NOISE.match(line) or line.startswith(("#", "|")):
            flush()
            block.append(_MARKDOWN_NOISE.sub("", line))
            if line.startswith(("#", "|")):
                flush()
            continue
        block.append(line)
    flush()
    return passages


class DocumentScanner:
    """Indirect-injection scan of one document.

    Layer 1: the document patterns (instructions about "your response" etc.) plus the direct
    heuristics, per sentence. Layer 2 (with an embedder of the model the injection weights
    were trained for — its similarity cut-off was tuned there): a stand-alone request sentence —
    a question or an imperative such as "Explain …", "Write a script …" — whose meaning is
    far from everything else in the document. Handbooks say "Do X" all the time, but about
    their own subject; an instruction smuggled in for the model is about something else.
    """

    def __init__(
        self,
        detector: InjectionDetector | None = None,
        embedder: Embeddings | None = None,
        *,
        off_topic_similarity: float = 0.25,
        on_topic_chunk_similarity: float = 0.35,
    ):
        # Direct-question detectors (and the embedding classifier trained on questions) flag
        # ordinary handbook imperatives ("you are now in charge of …", "just write"), so the
        # document layer always runs and a caller's detector only adds its *high* verdicts.
        self.document_layer = document_detector()
        self.extra_detector = detector
        self.embedder: Embedder | None = None
        if embedder is not None:
            from knowledge.embeddings import as_embedder

            wrapped = as_embedder(embedder)
            # Any other model's similarities mean something else: patterns only, then.
            self.embedder = wrapped if embedding_layers_apply(wrapped) else None
        self.off_topic_similarity = off_topic_similarity
        # Chosen on the BIPIA gauge (`python -m gauges.injection --documents … --attacks …`):
        # from 0.30 on, no attack is cleared that the sentence comparison flags; 0.35 leaves room.
        self.on_topic_chunk_similarity = on_topic_chunk_similarity
        self._vector_cache: dict[str, object] = {}

    def scan(self, text: str, chunks: EmbeddedChunks | None = None) -> list[Finding]:
        """Suspicious passages of `text`. `chunks` — the document's chunks as ingest embedded
        them — let the off-topic layer clear on-topic requests by those vectors, embedding only
        the request sentences; the page's other sentences are embedded only when a request is
        far from every chunk (see `nearest_other_text`)."""
        clean = normalize_text(text)
        passages = document_passages(clean)
        smuggled = revealed_tags(text)
        if smuggled:
            passages.append(normalize_text(smuggled))
        findings: list[Finding] = []
        flagged: set[int] = set()
        verdicts = detect_many(self.document_layer, passages)
        if self.extra_detector is not None:
            extra = detect_many(self.extra_detector, passages)
            verdicts = [combine([v, e]) if e.level >= ThreatLevel.high else v for v, e in zip(verdicts, extra)]
        for i, passage in enumerate(passages):
            verdict = verdicts[i]
            if smuggled and i == len(passages) - 1:
                verdict = combine([verdict, Verdict(ThreatLevel.high, 1.0, ("smuggled_tag_characters",))])
            if verdict.level >= ThreatLevel.low:
                findings.append(Finding(passage, verdict))
                flagged.add(i)
        if self.embedder is not None:
            findings.extend(self._off_topic_requests(passages, flagged, chunks))
        return findings

    def _embed(self, passages: list[str]):
        """Embeddings with a per-scanner cache: re-scanning an edited page embeds only what changed."""
        import numpy as np

        missing = [p for p in dict.fromkeys(passages) if p not in self._vector_cache]
        if missing:
            if len(self._vector_cache) > 20_000:  # bounded: ~30 MB of vectors
                self._vector_cache.clear()
            for passage, vector in zip(missing, self.embedder.embed_array(missing)):
                self._vector_cache[passage] = vector
        return np.stack([self._vector_cache[p] for p in passages])

    def nearest_other_text(self, passages: list[str], candidates: list[int],
                           chunks: EmbeddedChunks | None = None) -> dict[int, float]:
        """For each candidate passage, its highest cosine to the rest of the document.

        That is its nearest other sentence — every sentence of the page embedded. With the
        document's embedded `chunks` (same vector space) a cheaper first look comes first: only
        the candidates are embedded and compared with the chunks that don't hold them; one at
        least `on_topic_chunk_similarity` from some chunk is on the page's subject and is done
        (its value is that chunk's cosine). Only when a candidate is far from every chunk — an
        off-topic request, or a short question chunks say little about — are the sentences
        embedded, exactly as without `chunks`. Chunk cosines alone run lower than sentence
        cosines for short questions (measured: no cut-off on them kept the handbook's clean
        pages unflagged), so they clear candidates and never flag one.
        """
        import numpy as np

        nearest: dict[int, float] = {}
        by_sentence = list(candidates)
        if chunks is not None and len(chunks.texts) and chunks.vector_space == self.embedder.vector_space:
            chunk_words = [_shingles(t) for t in chunks.texts]
            vectors = self._embed([passages[i] for i in candidates])
            chunk_vectors = np.asarray(chunks.vectors, dtype=np.float32)
            by_sentence = []
            for i, v in zip(candidates, vectors):
                others = [c for c, words in enumerate(chunk_words) if not _holds(words, passages[i])]
                near_chunk = float(np.max(chunk_vectors[others] @ v)) if others else -1.0
                if near_chunk >= self.on_topic_chunk_similarity:
                    nearest[i] = near_chunk
                else:
                    by_sentence.append(i)
        if by_sentence:
            vectors = self._embed(passages)
            for i in by_sentence:
                nearest[i] = float(np.max(np.delete(vectors, i, axis=0) @ vectors[i]))
        return nearest

    def _off_topic_requests(self, passages: list[str], skip: set[int],
                            chunks: EmbeddedChunks | None = None) -> list[Finding]:
        candidates = [i for i, p in enumerate(passages) if i not in skip and is_request_shaped(p)]
        if not candidates or len(passages) < 3:
            return []
        out: list[Finding] = []
        for i, nearest in sorted(self.nearest_other_text(passages, candidates, chunks).items()):
            if nearest < self.off_topic_similarity:
                score = round(min(1.0, 0.5 + (self.off_topic_similarity - nearest)), 4)
                out.append(Finding(passages[i], Verdict(ThreatLevel.medium, score, ("off_topic_request",))))
        return out


_WORD = re.compile(r"\w+")
_SHINGLE = 4  # words: a sentence split across two chunks still leaves whole runs in each


def _shingles(text: str) -> tuple[set[tuple[str, ...]], str]:
    """A text's runs of `_SHINGLE` words, and its words joined (for passages shorter than a run)."""
    words = _WORD.findall(text.casefold())
    return {tuple(words[k : k + _SHINGLE]) for k in range(len(words) - _SHINGLE + 1)}, " ".join(words)


def _holds(chunk: tuple[set[tuple[str, ...]], str], passage: str) -> bool:
    """Whether a chunk holds (most of) `passage`: at least half of its word runs. The chunk's
    vector then carries the passage itself and says nothing about the rest of the document."""
    runs, joined = _shingles(passage)
    if not runs:  # shorter than one run
        return bool(joined) and f" {joined} " in f" {chunk[1]} "
    return sum(r in chunk[0] for r in runs) * 2 >= len(runs)


_REQUEST_START = re.compile(
    r"^(?:please\s+)?(?:"
    r"(?:can|could|would|will)\s+you|help\s+me|show\s+me|tell\s+me|give\s+me|teach\s+me|"
    r"what(?:'s|\s+is|\s+are|\s+was|\s+were|\s+\w+\s+(?:is|are|was|were))|who|whom|which|when\s+(?:is|was|did)|where\s+(?:is|can|do)|why\s+(?:is|do|does|are)|"
    r"how\s+(?:do|does|did|can|could|should|have|has|is|are|to)|is\s+(?:this|it|there)|are\s+there|"
    r"explain|describe|summari[sz]e|analy[sz]e|determine|classify|evaluate|assess|compare|"
    r"write|draft|compose|develop|create|generate|produce|provide|list|name|recommend|suggest|"
    r"translate|break\s+down|outline|calculate|compute|solve|convert|define|discuss|predict|plan"
    r")\b",
    re.IGNORECASE,
)


def is_request_shaped(passage: str) -> bool:
    """A short stand-alone question or imperative, the shape of a task given to an assistant."""
    words = passage.split()
    if not 3 <= len(words) <= 40 or passage.startswith("#"):
        return False
    return bool(_REQUEST_START.match(passage))


def scan_document(text: str, detector: InjectionDetector | None = None, embedder: Embeddings | None = None) -> list[Finding]:
    """Suspicious passages of a document (empty list = nothing found).

    The document heuristics always run; `detector` (e.g. the question detector) adds only
    its `high` verdicts. Pass the MiniLM `embedder` to enable the off-topic-request layer
    (without it, or with another model, stand-alone task requests like "Explain
    photosynthesis." are not caught).
    """
    return DocumentScanner(detector, embedder).scan(text)


def is_flagged(findings: Sequence[Finding]) -> bool:
    """A document is flagged when any passage reaches the blocking level."""
    return any(f.verdict.level >= BLOCKING_LEVEL for f in findings)
