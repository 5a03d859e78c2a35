"""Documents in, scoped chunks with vectors out: the one ingestion path every caller uses.

`KnowledgeBase` ties loading, chunking, embedding and a `ChunkStore` together:

- A document's id is `document_id(scope, name)`: the same name in the same scope is the same
  document, so uploading it again replaces it.
- Unchanged content (same salted content hash as the live version) writes nothing.
- Changed content is chunked and *every* chunk embedded before the store is touched; then a new
  version is staged (invisible), published (live in one store operation) and the older versions
  retired (see `knowledge.store`). A failure at any point removes the new version and leaves the
  old one exactly as it was.
- A `VersionPublisher` (the admin registry, for uploads) may number the version and take part in
  publishing it: its `publish` makes the version live by calling `go_live` and records it in the
  same step, so store and records never disagree about which version is current.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from knowledge.chunk_records import embedding_text
from knowledge.chunking import chunk_document
from knowledge.embeddings import Embedder, as_embedder
from knowledge.loaders import PdfLimits, check_size, load_document
from knowledge.store import ChunkStore
from knowledge.types import Chunk, EmptyDocument, IngestResult, LoadedDocument, Scope, document_id

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (chunks embedded so far, total chunks)


class VersionPublisher(Protocol):
    """Numbers a document's versions and publishes them together with the caller's own records."""

    def allocate(self, doc_id: str, at_least: int) -> int:
        """A version number of `doc_id`, at least `at_least`, above every number handed out before."""

    def publish(self, doc_id: str, version: int, chunks: int, go_live: Callable[[], None]) -> bool:
        """Call `go_live()` (the store flip) and record `version` as current; False when a newer
        version is already recorded (this one then loses). Raising undoes the version."""

# Chunks embedded per call: large enough for the model to batch well, small enough for
# progress reports every few seconds on a 2-core machine.
EMBED_BATCH = 128
# `ingest_many` embeds once this many chunks (from one or more documents) are waiting.
MANY_BATCH_CHUNKS = 256


class KnowledgeBase:
    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        *,
        max_file_bytes: int = 25 * 1024 * 1024,
        pdf_limits: PdfLimits = PdfLimits(),
        chunk_tokens: int = 256,
        overlap_tokens: int = 40,
    ):
        self.store = store
        self.embedder = as_embedder(embedder)
        self.max_file_bytes = max_file_bytes
        self.pdf_limits = pdf_limits
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens

    # -- loading -------------------------------------------------------------------------------

    def load(self, name: str, data: bytes, *, url: str | None = None) -> LoadedDocument:
        """Parse a file; raises a `DocumentError` subclass with a user-safe message."""
        return load_document(name, data, max_bytes=self.max_file_bytes, url=url, pdf_limits=self.pdf_limits)

    # -- ingesting -----------------------------------------------------------------------------

    def ingest_loaded(
        self, doc: LoadedDocument, scope: Scope, *, on_progress: ProgressCallback | None = None,
        publisher: VersionPublisher | None = None,
    ) -> IngestResult:
        doc_id = document_id(scope, doc.name)
        previous_hash = self.store.document_hash(doc_id)
        if previous_hash == doc.content_hash:
            log.info("ingest %s in %s: unchanged, nothing written", doc.name, scope)
            return self._result(doc, scope, doc_id, chunks=self._stored_chunk_count(scope, doc_id),
                                changed=False)

        chunks = chunk_document(
            doc,
            scope,
            doc_id=doc_id,
            chunk_tokens=self.chunk_tokens,
            overlap_tokens=self.overlap_tokens,
            ingested_at=time.time(),
        )
        if not chunks:  # a hand-built LoadedDocument without text: never replace a doc with nothing
            raise EmptyDocument(doc.name)
        vectors = self._embed_chunks(chunks, on_progress)
        # Only now, with every vector in hand, is the store touched.
        current = self._write_version(doc_id, chunks, vectors, publisher)
        log.info(
            "ingest %s in %s: %d chunks%s%s", doc.name, scope, len(chunks),
            " (replaced the previous version)" if previous_hash else "",
            "" if current else " (superseded at once by a newer upload)",
        )
        return self._result(doc, scope, doc_id, chunks=len(chunks), changed=True,
                            replaced=previous_hash is not None)

    def ingest_bytes(
        self,
        name: str,
        data: bytes,
        scope: Scope,
        *,
        url: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> IngestResult:
        return self.ingest_loaded(self.load(name, data, url=url), scope, on_progress=on_progress)

    def ingest_path(
        self, path: Path, scope: Scope, *, on_progress: ProgressCallback | None = None
    ) -> IngestResult:
        path = Path(path)
        # Refuse an oversized file before reading it into memory.
        check_size(path.name, path.stat().st_size, max_bytes=self.max_file_bytes)
        return self.ingest_bytes(path.name, path.read_bytes(), scope, on_progress=on_progress)

    def ingest_many(
        self,
        docs: Iterable[LoadedDocument],
        scope: Scope,
        *,
        on_progress: ProgressCallback | None = None,
        batch_chunks: int = MANY_BATCH_CHUNKS,
    ) -> list[IngestResult]:
        """Ingest many loaded documents with embedding batches that span documents.

        Same results and guarantees as `ingest_loaded` per document (a document is written only
        once every one of its chunks is embedded), but small documents share model batches, so
        a folder ingests at close to the model's raw throughput. `on_progress(done, total)`
        counts documents. On an embedding failure, documents already written stay written.
        """
        docs = list(docs)
        results: list[IngestResult | None] = [None] * len(docs)
        pending: list[tuple[int, LoadedDocument, str, bool, list[Chunk]]] = []
        pending_ids: set[str] = set()
        done = 0

        def flush() -> None:
            nonlocal done
            if not pending:
                return
            texts = [embedding_text(c) for *_, chunks in pending for c in chunks]
            vectors = self.embed_texts(texts)
            start = 0
            for index, doc, doc_id, replaced, chunks in pending:
                self._write_version(doc_id, chunks, vectors[start : start + len(chunks)])
                start += len(chunks)
                results[index] = self._result(doc, scope, doc_id, chunks=len(chunks), changed=True,
                                              replaced=replaced)
                done += 1
                if on_progress:
                    on_progress(done, len(docs))
            pending.clear()
            pending_ids.clear()

        stored_counts: dict[str, int] | None = None  # one listing of the scope, fetched on demand

        def stored_chunks(doc_id: str) -> int:
            nonlocal stored_counts
            if stored_counts is None or doc_id not in stored_counts:
                stored_counts = {d["doc_id"]: int(d.get("chunks", 0)) for d in self.store.documents(scope)}
            return stored_counts.get(doc_id, 0)

        queued = 0
        for index, doc in enumerate(docs):
            doc_id = document_id(scope, doc.name)
            if doc_id in pending_ids:
                flush()  # the same document twice: the later upload must see the earlier one
                queued = 0
            previous_hash = self.store.document_hash(doc_id)
            if previous_hash == doc.content_hash:
                results[index] = self._result(doc, scope, doc_id, chunks=stored_chunks(doc_id), changed=False)
                done += 1
                if on_progress:
                    on_progress(done, len(docs))
                continue
            chunks = chunk_document(
                doc, scope, doc_id=doc_id, chunk_tokens=self.chunk_tokens,
                overlap_tokens=self.overlap_tokens, ingested_at=time.time(),
            )
            if not chunks:
                flush()  # what's embedded so far is complete: store it before refusing this one
                raise EmptyDocument(doc.name)
            pending.append((index, doc, doc_id, previous_hash is not None, chunks))
            pending_ids.add(doc_id)
            queued += len(chunks)
            if queued >= batch_chunks:
                flush()
                queued = 0
        flush()
        return [r for r in results if r is not None]

    # -- managing ------------------------------------------------------------------------------

    def remove(self, scope: Scope, name_or_doc_id: str, *, through_version: int | None = None) -> int:
        """Delete a document by its name in `scope` (or its doc id); returns live chunks removed.
        With `through_version`, only versions up to that one go (a newer upload survives)."""
        removed = self.store.delete_document(document_id(scope, name_or_doc_id), through_version=through_version)
        if removed == 0 and self._is_doc_id_in_scope(scope, name_or_doc_id):
            removed = self.store.delete_document(name_or_doc_id, through_version=through_version)
        return removed

    def withdraw(self, doc_id: str, publisher: VersionPublisher) -> int:
        """Publish "no searchable version" of a document (a quarantined upload): a new version
        without chunks is recorded, then every older one retired. Returns live chunks removed."""
        version = publisher.allocate(doc_id, self.store.next_version(doc_id))
        searchable = self.store.live_version(doc_id)
        if publisher.publish(doc_id, version, 0, lambda: None):
            self.store.retire(doc_id, version)
            return searchable.chunks if searchable else 0
        return 0

    def documents(self, scope: Scope) -> list[dict]:
        return self.store.documents(scope)

    # -- embedding -----------------------------------------------------------------------------

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 vectors."""
        vectors = self.embedder.embed_array(texts)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"embedder returned shape {vectors.shape} for {len(texts)} texts")
        return vectors

    def _embed_chunks(self, chunks: list[Chunk], on_progress: ProgressCallback | None) -> np.ndarray:
        total = len(chunks)
        texts = [embedding_text(c) for c in chunks]
        parts: list[np.ndarray] = []
        if on_progress:
            on_progress(0, total)
        for start in range(0, total, EMBED_BATCH):
            parts.append(self.embed_texts(texts[start : start + EMBED_BATCH]))
            if on_progress:
                on_progress(min(start + EMBED_BATCH, total), total)
        if not parts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.concatenate(parts)

    # -- helpers -------------------------------------------------------------------------------

    def _write_version(
        self, doc_id: str, chunks: list[Chunk], vectors: np.ndarray, publisher: VersionPublisher | None = None
    ) -> bool:
        """Write one new version through the store's replace protocol; True when it is live after."""
        version = self.store.next_version(doc_id)
        if publisher is None:
            return self.store.replace_document(doc_id, chunks, vectors, version=version)
        version = publisher.allocate(doc_id, version)
        return self.store.replace_document(doc_id, chunks, vectors, version=version,
                                           publish=partial(publisher.publish, doc_id, version, len(chunks)))

    def _is_doc_id_in_scope(self, scope: Scope, doc_id: str) -> bool:
        # Removing by raw doc id must not reach into another scope's documents.
        return any(d.get("doc_id") == doc_id for d in self.store.documents(scope))

    def _stored_chunk_count(self, scope: Scope, doc_id: str) -> int:
        for d in self.store.documents(scope):
            if d.get("doc_id") == doc_id:
                return int(d.get("chunks", 0))
        return 0

    @staticmethod
    def _result(
        doc: LoadedDocument, scope: Scope, doc_id: str, *, chunks: int, changed: bool,
        replaced: bool = False,
    ) -> IngestResult:
        return IngestResult(
            doc_id=doc_id,
            name=doc.name,
            title=doc.title,
            scope=scope,
            pages=doc.pages,
            chunks=chunks,
            content_hash=doc.content_hash,
            changed=changed,
            replaced=replaced,
            warnings=doc.warnings,
        )


__all__ = ["KnowledgeBase", "VersionPublisher", "embedding_text", "ProgressCallback", "EMBED_BATCH", "MANY_BATCH_CHUNKS"]
