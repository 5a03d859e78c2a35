"""Sentence-level reranking of the best hybrid candidates.

A chunk's fused score says how close the passage is as a whole; an asked fact lives in one of
its sentences. The best `depth` candidates of a search are re-scored as

    (1 − weight) × fused score + weight × the best cosine between the query and one sentence

(the same MiniLM, each sentence embedded alone; `knowledge.text.evidence_sentences`), and
reordered; the rest keep their order behind them. A page that states the fact in one sentence
goes ahead of an overview page that is about the topic in every sentence but never says it.

The depth (10 of 10/15/20, on the handbook's dev files) and the weight (0.10 of
0.05–0.50) were chosen on the dev QA files and SciFact (`docent eval qa … --json` with
`DOCENT_RERANK_WEIGHT` set; `docent eval retrieval`): 0.10 lifts the dev files' pooled hit@1 /
hit@3 / recall@5 from 0.852 / 0.971 / 0.971 to 0.862 / 0.981 / 0.975, makes no dev file worse on
any figure, and keeps SciFact's nDCG@10 at 0.740 (0.742 without); heavier weights gain a little
more on the handbook's prose and cost SciFact's abstracts (0.735 at 0.20) and the 10-Q filings'
tables (eval/README.md has the table). The test files were run to report.
The sentence vectors go into `SENTENCE_VECTORS`, where the answerability score finds those of the
passages it reads (the store's top five, which are among the ten reranked; the gate reads the
order before reranking, see `knowledge.retriever`): the gate embeds nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from knowledge.embeddings import Embedder
from knowledge.query_vectors import SENTENCE_VECTORS, QueryVectorCache, embed_through
from knowledge.text import evidence_sentences
from knowledge.types import Hit

RERANK_DEPTH = 10
RERANK_WEIGHT = 0.10


class SentenceReranker:
    """Reorders the best `depth` hits by fused score blended with their best sentence's cosine."""

    def __init__(self, embedder: Embedder, *, depth: int = RERANK_DEPTH, weight: float = RERANK_WEIGHT,
                 sentence_vectors: QueryVectorCache | None = SENTENCE_VECTORS):
        if depth < 0:
            raise ValueError("a rerank depth is 0 (off) or more")
        if not 0.0 <= weight <= 1.0:
            raise ValueError("a rerank weight is between 0 and 1")
        self.embedder = embedder
        self.depth = depth
        self.weight = weight
        self.sentence_vectors = sentence_vectors

    @property
    def active(self) -> bool:
        return self.depth > 1 and self.weight > 0

    def best_sentence_cosines(self, query_vector: np.ndarray, hits: Sequence[Hit]) -> list[float]:
        """Per hit, the best cosine between the query and one of its sentences (a hit without a
        full sentence — a table cell, a heading — scores its chunk's cosine)."""
        per_hit = [evidence_sentences(h.chunk.text) for h in hits]
        flat = [s for sentences in per_hit for s in sentences]
        vectors = embed_through(self.sentence_vectors, self.embedder, flat)
        cosines = vectors @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        out, start = [], 0
        for hit, sentences in zip(hits, per_hit):
            end = start + len(sentences)
            out.append(float(cosines[start:end].max()) if end > start else float(hit.dense_score or 0.0))
            start = end
        return out

    def rerank(self, query_vector: np.ndarray, hits: Sequence[Hit]) -> list[Hit]:
        """`hits` (best first) with the first `depth` reordered; each reranked hit's `score` is
        its blended one. Ties keep the search's order."""
        hits = list(hits)
        if not self.active or len(hits) < 2:
            return hits
        head, tail = hits[: self.depth], hits[self.depth :]
        best = self.best_sentence_cosines(query_vector, head)
        blended = [(1.0 - self.weight) * h.score + self.weight * b for h, b in zip(head, best)]
        order = sorted(range(len(head)), key=lambda i: (-blended[i], i))
        return [replace(head[i], score=blended[i]) for i in order] + tail
