"""The hybrid retriever: a LangChain `BaseRetriever` bound to one asker's scope.

Dense (MiniLM cosine) and BM25 candidates are fused by the store (see `knowledge.fusion`);
`answerable` makes the "the documents don't answer this" call before any generation.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from knowledge.chain import hit_to_document
from knowledge.embeddings import Embedder
from knowledge.query_vectors import QUERY_VECTORS, QueryVectorCache
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

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Top `k` hits for `query` among chunks this retriever's scope may read."""
        if not query or not query.strip():
            return []
        store: ChunkStore = self.store
        # The vector is computed by the store on this thread; its BM25 side runs meanwhile on a worker.
        return store.search(query, lambda: self._query_vector(query), self.scope, k or self.k)

    def _query_vector(self, query: str):
        cache = self.query_vectors
        return cache.vector(self.embedder, query) if cache is not None else self.embedder.embed_array([query])[0]

    def best_elsewhere(self, query: str) -> float | None:
        """The best cosine of `query` among this workspace's chunks that the scope may not read
        (`ChunkStore.best_elsewhere`); None when every document is visible here."""
        if not query or not query.strip():
            return None
        return self.store.best_elsewhere(self._query_vector(query), self.scope)

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

