"""Qdrant server backend through qdrant-client (also runs qdrant-client's local mode, which the
tests use: `location=":memory:"` or `path=`).

Same vectors, payload, scope filter and fusion as the Edge backend (the core does all of it), so
both rank identically. Several bot processes may share one server: the store then never sweeps
on open, and version numbers must come from a shared counter (see `knowledge.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from knowledge.chunk_records import DENSE_VECTOR, INDEXED_FIELDS, SPARSE_VECTOR
from knowledge.embeddings import DIM
from knowledge.fusion import DEFAULT_FUSION, Candidate, FusionConfig
from knowledge.store import ChunkStore, PointData, PointRecord, VectorQuery, Where

_SCHEMA = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
           "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)}


class ServerBackend:
    """One collection of a Qdrant server (or of qdrant-client local mode).

    `client` shares a client another backend also uses (several replicas of one server in tests);
    the backend then neither owns it nor assumes it is the only writer.
    """

    def __init__(self, client: QdrantClient, collection: str, dim: int, *, owns_client: bool, exclusive: bool):
        self.client = client
        self.collection = collection
        self.name = repr(collection)
        self.exclusive = exclusive
        self._owns_client = owns_client
        options = client.init_options
        local = options.get("path") is not None or options.get("location") == ":memory:"
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config={DENSE_VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
        if not local:  # local mode warns that payload indexes have no effect there
            indexed = set(client.get_collection(collection).payload_schema or {})
            for field, kind in INDEXED_FIELDS.items():
                if field not in indexed:  # a collection made before the field existed gets it too
                    client.create_payload_index(collection, field, field_schema=_SCHEMA[kind], wait=True)

    def filter(self, where: Where) -> models.Filter:
        return models.Filter.model_validate(where)  # the store's filters are Qdrant's JSON form already

    def upsert(self, points: Sequence[PointData]) -> None:
        structs = [
            models.PointStruct(id=p.id, payload=p.payload, vector={
                DENSE_VECTOR: p.dense,
                SPARSE_VECTOR: models.SparseVector(indices=p.sparse[0], values=p.sparse[1]),
            })
            for p in points
        ]
        self.client.upsert(self.collection, structs, wait=True)

    def delete(self, flt: models.Filter) -> None:
        self.client.delete(self.collection, models.FilterSelector(filter=flt), wait=True)

    def set_payload(self, flt: models.Filter, payload: dict) -> None:
        self.client.set_payload(self.collection, payload, points=flt, wait=True)

    def count(self, flt: models.Filter | None) -> int:
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    def scroll(self, flt: models.Filter | None, fields: list[str], offset: Any, limit: int) -> tuple[list[dict], Any]:
        records, offset = self.client.scroll(self.collection, scroll_filter=flt, limit=limit, offset=offset,
                                             with_payload=fields, with_vectors=False)
        return [r.payload or {} for r in records], offset

    def query(self, queries: Sequence[VectorQuery], flt: models.Filter, limit: int,
              fields: list[str]) -> list[list[Candidate]]:
        def request(q: VectorQuery) -> models.QueryRequest:
            if q.among is not None:  # ids a scoped search returned: their exact cosines (a filter this small is scanned)
                return models.QueryRequest(query=q.dense, using=DENSE_VECTOR, limit=len(q.among),
                                           filter=models.Filter(must=[models.HasIdCondition(has_id=list(q.among))]),
                                           with_payload=False, with_vector=False)
            return models.QueryRequest(
                query=q.dense if q.dense is not None else models.SparseVector(indices=q.sparse[0], values=q.sparse[1]),
                using=DENSE_VECTOR if q.dense is not None else SPARSE_VECTOR,
                filter=flt, limit=limit, with_payload=fields or False, with_vector=False,
            )

        requests = [request(q) for q in queries]
        responses = self.client.query_batch_points(self.collection, requests)
        return [[Candidate(str(p.id), p.score, p.payload or {}) for p in r.points] for r in responses]

    def retrieve(self, ids: Sequence[str], fields: list[str]) -> list[PointRecord]:
        records = self.client.retrieve(self.collection, list(ids), with_payload=fields if fields else False,
                                       with_vectors=False)
        return [PointRecord(str(r.id), r.payload or {}) for r in records]

    def flush(self) -> None:
        """Nothing to do: every write waited for the server."""

    def optimize(self) -> None:
        """Nothing to do: the server's own optimizers run in the background."""

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


class QdrantServerStore(ChunkStore):
    """The chunk store in one collection of a Qdrant server, of qdrant-client local mode, or of
    a `client` that other stores share."""

    def __init__(
        self,
        url: str | None = None,
        *,
        path: str | None = None,
        location: str | None = None,
        client: QdrantClient | None = None,
        api_key: str | None = None,
        collection: str = "docent",
        dim: int = DIM,
        fusion: FusionConfig = DEFAULT_FUSION,
        timeout: int = 30,
    ):
        if sum(x is not None for x in (url, path, location, client)) != 1:
            raise ValueError("give exactly one of url, path, location or client")
        self.collection = collection
        if client is not None:
            backend = ServerBackend(client, collection, dim, owns_client=False, exclusive=False)
        else:
            # Local mode (path / location) belongs to this process alone (qdrant-client locks the folder).
            own = (QdrantClient(url=url, api_key=api_key, timeout=timeout) if url is not None
                   else QdrantClient(path=path) if path is not None else QdrantClient(location=location))
            try:
                backend = ServerBackend(own, collection, dim, owns_client=True, exclusive=url is None)
            except Exception as e:  # connection refused, auth, timeouts: say where, not the key
                own.close()
                where = url or path or location
                raise ConnectionError(
                    f"can't open Qdrant collection {collection!r} at {where}: {type(e).__name__}"
                ) from e
        super().__init__(backend, dim=dim, fusion=fusion)
