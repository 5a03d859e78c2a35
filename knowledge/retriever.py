"""The hybrid retriever: a LangChain `BaseRetriever` bound to one asker's scope.

Dense (MiniLM cosine) and BM25 candidates are fused by the store (see `knowledge.fusion`); the
best of them are reordered by their best sentence (`knowledge.rerank`) when a reranker is given;
`answerable` makes the "the documents don't answer this" call before any generation.

The answerability score reads the store's own order (`gate_hits`), not the reranked one: the
reranker lifts the sentence that comes closest to the question, which a near miss also has, and
a gate fed reranked passages separated answerable from unanswerable worse on dev (ROC AUC 0.797
against 0.819 with its weights refit). Answers and citations use the reranked passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from knowledge.chain import hit_to_document
from knowledge.embeddings import Embedder
from knowledge.fusion import candidate_limit
from knowledge.query_vectors import QUERY_VECTORS, QueryVectorCache
from knowledge.rerank import SentenceReranker
from knowledge.spelling import Speller
from knowledge.store import ChunkStore
from knowledge.types import Hit, Scope


class HybridRetriever(BaseRetriever):
    """Scoped hybrid search over a `ChunkStore`; one instance per asker scope (cheap to build)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any = Field(description="a ChunkStore")
    embedder: Embedder
    scope: Scope
    k: int = 5
    relevance_threshold: float = 0.40
    # Query embeddings of repeated questions (shared by every retriever; None embeds every time).
    query_vectors: QueryVectorCache | None = QUERY_VECTORS
    # Reorders the best candidates by their best sentence (None: the store's hybrid order).
    reranker: SentenceReranker | None = None
    # Corrects misspelled words to words of what this scope may read before searching (None: as asked).
    speller: Speller | None = None
    # The last search's query and the store's top k for it before reranking (see `gate_hits`).
    _store_order: tuple[str, list[Hit]] | None = PrivateAttr(default=None)
    _corrected: dict[str, str] = PrivateAttr(default_factory=dict)  # asked → searched (`search_text`)

    def search_text(self, query: str) -> str:
        """What is searched and judged for `query`: its misspelled words corrected (`speller`),
        the same text for every use of this retriever (the search, the gate, `best_elsewhere`)
        even if the speller reads new words meanwhile."""
        if self.speller is None:
            return query
        if query not in self._corrected:
            if len(self._corrected) >= 16:
                self._corrected.clear()
            self._corrected[query] = self.speller.correct(self.scope, query)
        return self._corrected[query]

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Top `k` hits for `query` (as `search_text` corrects it) among chunks this retriever's
        scope may read."""
        if not query or not query.strip():
            return []
        asked, query = query, self.search_text(query)
        store: ChunkStore = self.store
        k = k or self.k
        reranker = self.reranker if self.reranker is not None and self.reranker.active else None
        vector = []  # the query's vector, once the store has computed it

        def query_vector():
            vector.append(self._query_vector(query))
            return vector[-1]

        # The vector is computed by the store on this thread; its BM25 side runs meanwhile on a worker.
        # With a reranker the store returns at least its depth, fused from the candidates a search
        # of k fuses: its first k are the plain search's, which the gate reads (`gate_hits`).
        hits = store.search(query, query_vector, self.scope, max(k, reranker.depth) if reranker else k,
                            candidates=candidate_limit(k))
        self._store_order = (asked, hits[:k])
        if reranker is None or not hits:
            return hits
        return reranker.rerank(vector[-1] if vector else self._query_vector(query), hits)[:k]

    def gate_hits(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """The passages the answerability score reads for `query`: the store's hybrid top k from
        this retriever's last search when it was for `query`, else `hits` as given."""
        if self._store_order is not None and self._store_order[0] == query:
            return list(self._store_order[1])
        return list(hits)

    def _query_vector(self, query: str):
        cache = self.query_vectors
        return cache.vector(self.embedder, query) if cache is not None else self.embedder.embed_array([query])[0]

    def best_elsewhere(self, query: str) -> float | None:
        """The best cosine of `query` among this workspace's chunks that the scope may not read
        (`ChunkStore.best_elsewhere`); None when every document is visible here."""
        if not query or not query.strip():
            return None
        return self.store.best_elsewhere(self._query_vector(self.search_text(query)), self.scope)

    def answerable(self, hits: list[Hit]) -> bool:
        """Whether the documents plausibly answer: the closest chunk's cosine reaches the threshold.

        The fused score is rank-based and says nothing absolute; the dense cosine does (an
        unrelated question scores ≈0.0–0.2 with MiniLM, an on-topic one ≥0.35).
        """
        best = max((h.dense_score for h in hits if h.dense_score is not None), default=None)
        return best is not None and best >= self.relevance_threshold

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit_to_document(h) for h in self.search(query)]

