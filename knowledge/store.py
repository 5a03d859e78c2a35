"""The one small interface every chunk store implements (Qdrant Edge in-process, Qdrant server).

Every search takes the asker's `Scope` and applies it as a mandatory filter: there is no
method that searches without one.

Replacing a document is insert-new-then-delete-old: while it runs a search may see both
versions, never neither; searches therefore keep only the newest version of each document
(highest `ingested_at` per `doc_id`), so a reader never sees both in one answer either.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from knowledge.types import Chunk, Hit, Scope


class ChunkStore(Protocol):
    def add(self, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        """Insert chunks with their dense vectors (sparse BM25 vectors are made here)."""

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        """Make `chunks` the only version of `doc_id` (insert, then delete older versions)."""

    def delete_document(self, doc_id: str) -> int:
        """Remove every chunk of a document; returns how many were removed."""

    def document_hash(self, doc_id: str) -> str | None:
        """Content hash of the stored version of a document, or None if absent."""

    def documents(self, scope: Scope) -> list[dict]:
        """One payload-like dict per document stored *in* `scope` (exact channel) with a `chunks` count."""

    def search(
        self, query: str, query_vector: np.ndarray, scope: Scope, limit: int = 5
    ) -> list[Hit]:
        """Hybrid (dense + BM25) search restricted to what `scope` may see, best first."""

    def count(self) -> int: ...

    def close(self) -> None: ...
