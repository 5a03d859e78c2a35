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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from knowledge.chunk_records import embedding_text
from knowledge.chunking import chunk_document
from knowledge.embeddings import Embedder, as_embedder
from knowledge.loaders import PdfLimits, check_size, load_document
from knowledge.store import ChunkStore
from knowledge.types import (
    Chunk,
    EmbeddedChunks,
    EmptyDocument,
    IngestResult,
    LoadedDocument,
    Scope,
    document_id,
)

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


@dataclass
class PreparedDocument:
    """A loaded document on its way into the store: chunked (unless the store already holds
    these bytes), then embedded (`KnowledgeBase.embed_prepared`, in batches that may span
    documents), then written (`KnowledgeBase.publish_prepared`). Nothing is written before that."""

    doc: LoadedDocument
    scope: Scope
    doc_id: str
    previous_hash: str | None  # the live version's content hash, None when nothing is stored
    chunks: list[Chunk]  # empty when unchanged
    vectors: np.ndarray | None = None
    vector_space: str = ""

    @property
    def unchanged(self) -> bool:
        return self.previous_hash == self.doc.content_hash

    @property
    def embedded(self) -> EmbeddedChunks | None:
        """The chunks with their vectors, once embedded (what the document scan may reuse)."""
        if self.vectors is None:
            return None
        return EmbeddedChunks(tuple(embedding_text(c) for c in self.chunks), self.vectors, self.vector_space)


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
        prepared = self.prepare(doc, scope)
        self.embed_prepared([prepared], on_progress=on_progress)
        return self.publish_prepared(prepared, publisher)

    def prepare(self, doc: LoadedDocument, scope: Scope) -> PreparedDocument:
        """Chunk `doc` for `scope` unless the store's live version has the same content hash.
        Raises `EmptyDocument` for a document without text (never replace a doc with nothing)."""
        doc_id = document_id(scope, doc.name)
        previous_hash = self.store.document_hash(doc_id)
        if previous_hash == doc.content_hash:
            return PreparedDocument(doc, scope, doc_id, previous_hash, [])
        chunks = chunk_document(
            doc,
            scope,
            doc_id=doc_id,
            chunk_tokens=self.chunk_tokens,
            overlap_tokens=self.overlap_tokens,
            ingested_at=time.time(),
        )
        if not chunks:  # a hand-built LoadedDocument without text
            raise EmptyDocument(doc.name)
        return PreparedDocument(doc, scope, doc_id, previous_hash, chunks)

    def embed_prepared(
        self, prepared: Sequence[PreparedDocument], *, on_progress: ProgressCallback | None = None,
        batch: int = EMBED_BATCH,
    ) -> None:
        """Embed every chunk of the changed documents in `prepared`, in model batches of `batch`
        chunks that span documents (small pages share a batch). All or nothing: on a failure no
        document gets vectors. `on_progress(chunks embedded, total)` after each batch."""
        todo = [p for p in prepared if not p.unchanged and p.vectors is None]
        texts = [embedding_text(c) for p in todo for c in p.chunks]
        total = len(texts)
        parts: list[np.ndarray] = []
        if on_progress:
            on_progress(0, total)
        for start in range(0, total, batch):
            parts.append(self.embed_texts(texts[start : start + batch]))
            if on_progress:
                on_progress(min(start + batch, total), total)
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        start = 0
        for p in todo:
            p.vectors = vectors[start : start + len(p.chunks)]
            p.vector_space = self.embedder.vector_space
            start += len(p.chunks)

    def publish_prepared(self, prepared: PreparedDocument, publisher: VersionPublisher | None = None) -> IngestResult:
        """Write an embedded document as a new version (see `VersionPublisher`); nothing for an
        unchanged one. A failure removes the new version and leaves the old one as it was."""
        p = prepared
        if p.unchanged:
            log.info("ingest %s in %s: unchanged, nothing written", p.doc.name, p.scope)
            return self._result(p.doc, p.scope, p.doc_id, chunks=self._stored_chunk_count(p.scope, p.doc_id),
                                changed=False)
        if p.vectors is None:
            raise ValueError(f"{p.doc.name}: publish_prepared before embed_prepared")
        # Only now, with every vector in hand, is the store touched.
        current = self._write_version(p.doc_id, p.chunks, p.vectors, publisher)
        log.info(
            "ingest %s in %s: %d chunks%s%s", p.doc.name, p.scope, len(p.chunks),
            " (replaced the previous version)" if p.previous_hash else "",
            "" if current else " (superseded at once by a newer upload)",
        )
        return self._result(p.doc, p.scope, p.doc_id, chunks=len(p.chunks), changed=True,
                            replaced=p.previous_hash is not None)

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
        results: list[IngestResult] = []
        pending: list[PreparedDocument] = []

        def flush() -> None:
            self.embed_prepared(pending)
            for p in pending:
                results.append(self.publish_prepared(p))
                if on_progress:
                    on_progress(len(results), len(docs))
            pending.clear()

        for doc in docs:
            if any(p.doc_id == document_id(scope, doc.name) for p in pending):
                flush()  # the same document twice: the later upload must see the earlier one
            try:
                prepared = self.prepare(doc, scope)
            except EmptyDocument:
                flush()  # what's embedded so far is complete: store it before refusing this one
                raise
            pending.append(prepared)
            if sum(len(p.chunks) for p in pending) >= batch_chunks:
                flush()
        flush()
        return results

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


__all__ = ["KnowledgeBase", "PreparedDocument", "VersionPublisher", "embedding_text", "ProgressCallback", "EMBED_BATCH", "MANY_BATCH_CHUNKS"]
