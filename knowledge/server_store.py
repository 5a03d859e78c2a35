"""`ChunkStore` on a Qdrant server through qdrant-client (also runs qdrant-client's local mode,
which the tests use: `location=":memory:"` or `path=`).

Same vectors, payload, scope filter and fusion as `EdgeChunkStore`, so both rank identically.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import numpy as np
from qdrant_client import QdrantClient, models

from knowledge import sparse
from knowledge.chunk_records import (
    DIM,
    INDEXED_FIELDS,
    LISTING_FIELDS,
    SCROLL_PAGE,
    UPSERT_BATCH,
    documents_from_payloads,
    newest_hash,
    point_id,
)
from knowledge.fusion import (
    DEFAULT_FUSION,
    DENSE_VECTOR,
    Candidate,
    FusionConfig,
    candidate_limit,
    fuse_candidates,
)
from knowledge.types import Chunk, Hit, Scope

log = logging.getLogger(__name__)



def scope_filter(scope: Scope) -> models.Filter:
    """The mandatory filter: the asker's workspace, and only channels that scope may read."""
    return models.Filter(
        must=[
            models.FieldCondition(key="workspace", match=models.MatchValue(value=scope.workspace)),
            models.FieldCondition(key="channel", match=models.MatchAny(any=list(scope.visible_channels))),
        ]
    )


def _doc_filter(doc_id: str) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])


class QdrantServerStore:
    """Chunks in one collection of a Qdrant server (or qdrant-client local mode)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        path: str | None = None,
        location: str | None = None,
        api_key: str | None = None,
        collection: str = "docent",
        dim: int = DIM,
        fusion: FusionConfig = DEFAULT_FUSION,
        timeout: int = 30,
    ):
        if sum(x is not None for x in (url, path, location)) != 1:
            raise ValueError("give exactly one of url, path or location")
        self.collection = collection
        self.dim = dim
        self.fusion = fusion
        self._lock = threading.RLock()
        self._closed = False
        # Local mode is always exact and ignores search params; on a server HNSW + payload
        # indexes serve large collections.
        self._local = url is None
        if url is not None:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
        elif path is not None:
            self._client = QdrantClient(path=path)
        else:
            self._client = QdrantClient(location=location)
        try:
            self._ensure_collection()
        except Exception as e:  # connection refused, auth, timeouts: say where, not the key
            self._client.close()
            where = url or path or location
            raise ConnectionError(f"can't open Qdrant collection {collection!r} at {where}: {type(e).__name__}") from e

    def _ensure_collection(self) -> None:
        if not self._client.collection_exists(self.collection):
            self._client.create_collection(
                self.collection,
                vectors_config={DENSE_VECTOR: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={sparse.SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            if not self._local:  # local mode warns that payload indexes have no effect
                for name in INDEXED_FIELDS:
                    self._client.create_payload_index(
                        self.collection, name, field_schema=models.PayloadSchemaType.KEYWORD
                    )

    # ------------------------------------------------------------------ writes

    def add(self, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        dense = np.asarray(dense, dtype=np.float32)
        if len(chunks) != len(dense):
            raise ValueError(f"{len(chunks)} chunks but {len(dense)} vectors")
        if len(chunks) and dense.shape[1] != self.dim:
            raise ValueError(f"vectors have {dense.shape[1]} dimensions, the store {self.dim}")
        points = []
        for chunk, vector in zip(chunks, dense):
            indices, values = sparse.document_vector(chunk.text)
            points.append(
                models.PointStruct(
                    id=point_id(chunk),
                    vector={
                        DENSE_VECTOR: vector.tolist(),
                        sparse.SPARSE_VECTOR: models.SparseVector(indices=indices, values=values),
                    },
                    payload=chunk.payload(),
                )
            )
        with self._lock:
            self._check_open()
            for start in range(0, len(points), UPSERT_BATCH):
                self._client.upsert(self.collection, points[start : start + UPSERT_BATCH], wait=True)

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        hashes = {c.content_hash for c in chunks}
        if any(c.doc_id != doc_id for c in chunks) or len(hashes) > 1:
            raise ValueError("replace_document takes the chunks of one version of that document")
        with self._lock:
            self.add(chunks, dense)  # new version first: readers never see neither
            old = models.Filter(
                must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))],
                must_not=[models.FieldCondition(key="content_hash", match=models.MatchAny(any=sorted(hashes)))],
            ) if hashes else _doc_filter(doc_id)
            self._client.delete(self.collection, models.FilterSelector(filter=old), wait=True)

    def delete_document(self, doc_id: str) -> int:
        with self._lock:
            self._check_open()
            n = self._client.count(self.collection, count_filter=_doc_filter(doc_id), exact=True).count
            if n:
                self._client.delete(self.collection, models.FilterSelector(filter=_doc_filter(doc_id)), wait=True)
            return n

    # ------------------------------------------------------------------ reads

    def document_hash(self, doc_id: str) -> str | None:
        return newest_hash(self._scroll(_doc_filter(doc_id), ["content_hash", "ingested_at"]))

    def documents(self, scope: Scope) -> list[dict]:
        exact = models.Filter(
            must=[
                models.FieldCondition(key="workspace", match=models.MatchValue(value=scope.workspace)),
                models.FieldCondition(key="channel", match=models.MatchValue(value=scope.storage_channel)),
            ]
        )
        return documents_from_payloads(self._scroll(exact, LISTING_FIELDS))

    def search(self, query: str, query_vector: np.ndarray, scope: Scope, limit: int = 5) -> list[Hit]:
        if limit <= 0:
            return []
        flt = scope_filter(scope)
        depth = candidate_limit(limit)
        qvec = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        requests = [
            models.QueryRequest(
                query=qvec.tolist(), using=DENSE_VECTOR, filter=flt, limit=depth, with_payload=True,
            )
        ]
        indices, values = sparse.query_vector(query)
        if indices:
            requests.append(
                models.QueryRequest(
                    query=models.SparseVector(indices=indices, values=values),
                    using=sparse.SPARSE_VECTOR,
                    filter=flt,
                    limit=depth,
                    with_payload=True,
                    with_vector=[DENSE_VECTOR],
                )
            )
        with self._lock:
            self._check_open()
            responses = self._client.query_batch_points(self.collection, requests)
        dense = [Candidate(str(p.id), p.score, p.payload or {}) for p in responses[0].points]
        sparse_hits = [
            Candidate(str(p.id), p.score, p.payload or {}, _dense_of(p.vector))
            for p in (responses[1].points if len(responses) > 1 else [])
        ]
        return fuse_candidates(dense, sparse_hits, qvec, limit, self.fusion)

    def count(self) -> int:
        with self._lock:
            self._check_open()
            return self._client.count(self.collection, exact=True).count

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._client.close()

    def __enter__(self) -> "QdrantServerStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the chunk store {self.collection!r} is closed")

    def _scroll(self, flt: models.Filter, fields: list[str]) -> Iterator[dict]:
        offset = None
        while True:
            with self._lock:
                self._check_open()
                records, offset = self._client.scroll(
                    self.collection, scroll_filter=flt, limit=SCROLL_PAGE, offset=offset,
                    with_payload=fields, with_vectors=False,
                )
            for r in records:
                yield r.payload or {}
            if offset is None:
                return


def _dense_of(vector) -> list[float] | None:
    if isinstance(vector, dict):
        v = vector.get(DENSE_VECTOR)
        return list(v) if v is not None else None
    return None
