"""The chunk store: one core (`ChunkStore`) over a small `Backend` interface that each Qdrant
flavour implements (Qdrant Edge in-process: `knowledge.edge_store`; a Qdrant server through
qdrant-client: `knowledge.server_store`). The core holds every rule; a backend only speaks its
client's dialect.

Scope is a filter, never a suggestion: every search takes the asker's `Scope` and applies it as a
mandatory filter, and that filter admits only *live* points. There is no method that searches
without one. The filter is one condition on `live_scope` (the point's workspace and channel as
one key), which only live points carry: `publish` sets it in the same operation that flips the
state, and a store written before it existed gets it when it opens.

Versions. A document is replaced by writing a new version next to the old one:

1. `stage`: every chunk of version `v` is written `pending` — invisible to search and listings;
2. `publish`: one store operation flips all of `v` to `live` (then the core checks that all of it
   is there: a newer writer may have swept part of it, and a fragment must never stay live);
3. `retire`: every older version of the document, live or pending, is deleted.

A failure at any step deletes `v` (`discard`). Readers keep only the newest live version of each
document (highest version number), so between steps 2 and 3, or after a crash there, a search
sees the old version or the new one, never a mix. Leftover pending points are swept when a store
that one process owns (Edge, qdrant-client local mode) opens, and by the `retire` of any newer
version of that document. `document_hash` only ever sees live versions, so a failed upload never makes a
re-upload look "unchanged".

Version numbers: `next_version` numbers versions within this process (enough when one process
owns the store); processes sharing a Qdrant server must take their numbers from one shared
counter (the admin registry's) — every writer deletes only versions older than its own, so
their order must be one that every process agrees on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from knowledge import sparse
from knowledge.chunk_records import (
    ALL_FIELDS,
    LISTING_FIELDS,
    LIVE,
    LIVE_SCOPE,
    PENDING,
    RANK_FIELDS,
    SCROLL_PAGE,
    STATE,
    UNVERSIONED,
    UPSERT_BATCH,
    VERSION,
    VERSION_FIELDS,
    StoredVersion,
    documents_from_payloads,
    embedding_text,
    newest_hash,
    point_id,
    point_payload,
    scope_key,
    stored_versions,
)
from knowledge.embeddings import DIM, on_model_start
from knowledge.fusion import (
    DEFAULT_FUSION,
    Candidate,
    FusionConfig,
    candidate_limit,
    fused_order,
    newest_versions,
)
from knowledge.types import Chunk, Hit, Scope

F = TypeVar("F")  # a backend's own filter type
# A filter in Qdrant's JSON form (`{"must": [{"key": …, "match": {"value": …}}, …]}`, optionally
# with `"must_not": […]`), which
# qdrant-client parses as it is and the Edge backend translates: the core never builds client objects.
Where = dict[str, Any]
# Runs a version's flip to live (the callable it is given) with the caller's own records; False
# when those already hold a newer version (see `ChunkStore.replace_document`).
Publish = Callable[[Callable[[], None]], bool]


@dataclass(frozen=True)
class PointData:
    """One point to write: id, dense vector, sparse BM25 vector (indices, values) and payload."""

    id: str
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    payload: dict


@dataclass(frozen=True)
class VectorQuery:
    """One search of a batch: a dense vector or a sparse (indices, values) one. With `among`, it
    scores only those point ids, all of them, exactly and without payloads: the cosines of
    candidates another (scoped) search found."""

    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None
    among: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PointRecord:
    """One point read by id: its payload (only the fields asked for)."""

    id: str
    payload: dict


class Backend(Protocol, Generic[F]):
    """The verbs a Qdrant backend offers the core. Writes are durable when they return."""

    # True when one process owns the data (its lock forbids a second opener): nothing can be
    # half-written by another process when it opens, so the core may sweep pending points.
    exclusive: bool
    name: str  # where the data is, for messages (never a key)

    def filter(self, where: Where) -> F: ...

    def upsert(self, points: Sequence[PointData]) -> None: ...

    def delete(self, flt: F) -> None: ...

    def set_payload(self, flt: F, payload: dict) -> None: ...

    def count(self, flt: F | None) -> int: ...

    def scroll(self, flt: F | None, fields: list[str], offset: Any, limit: int) -> tuple[list[dict], Any]:
        """One page of payloads (only `fields`) and the offset of the next page (None at the end)."""

    def query(self, queries: Sequence[VectorQuery], flt: F, limit: int, fields: list[str]) -> list[list[Candidate]]:
        """Run the searches in one batch; one best-first list per query, each candidate with only
        the payload `fields` (none for an empty list) and no vector (an `among` query: each of
        its points, no payload)."""

    def retrieve(self, ids: Sequence[str], fields: list[str]) -> list[PointRecord]:
        """The points with these ids (those that exist, any order) with payload `fields` (all of
        them for ALL_FIELDS)."""

    def flush(self) -> None: ...

    def optimize(self) -> None: ...

    def close(self) -> None: ...


class VersionSuperseded(RuntimeError):
    """A version lost part of its chunks to a newer version's sweep before it went live."""

    def __init__(self, doc_id: str, version: int):
        self.doc_id, self.version = doc_id, version
        super().__init__(f"version {version} of {doc_id} was superseded while it was written")


def _eq(key: str, value: Any) -> dict:
    return {"key": key, "match": {"value": value}}


def _where(*conditions: dict) -> Where:
    return {"must": list(conditions)}


def _of_version(doc_id: str, **version_range: int) -> Where:
    return _where(_eq("doc_id", doc_id), {"key": VERSION, "range": version_range})


# Points written between two automatic `ChunkStore.optimize` calls (a big upload, a bulk load).
OPTIMIZE_AFTER = 25_000

# A search given its query vector as a callable runs its BM25 side on one of these threads
# while the caller's thread embeds the query (see `ChunkStore.search`).
_bm25_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
QueryVector = np.ndarray | Callable[[], np.ndarray]


def _in_background(fn: Callable, *args) -> Future:
    global _bm25_pool
    with _pool_lock:
        if _bm25_pool is None:
            _bm25_pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="docent-bm25")
    return _bm25_pool.submit(fn, *args)


class ChunkStore:
    """Chunks of scoped, versioned documents in one Qdrant backend (see the module docstring)."""

    def __init__(self, backend: Backend, *, dim: int = DIM, fusion: FusionConfig = DEFAULT_FUSION):
        self.backend = backend
        self.dim = dim
        self.fusion = fusion
        self._lock = threading.RLock()  # one backend call at a time from this process
        self.generation = 0  # writes this process made (knowledge.spelling reads its words again)
        self._closed = False
        self._numbered: dict[str, int] = {}  # highest version `next_version` gave out, per document
        self._unsealed = 0  # points written since the last `optimize`
        self._upgrade_unversioned()
        self._upgrade_live_scope()
        if backend.exclusive:
            self._mutate(backend.delete, self._filter(_where(_eq(STATE, PENDING))))

    # ------------------------------------------------------------------ writes

    def add(self, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        """Insert chunks live at once, unversioned: for bulk loads that never replace a document
        (evaluation indexes, benchmarks). Documents that get replaced go through `replace_document`."""
        self._write(chunks, dense, UNVERSIONED, LIVE)

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], dense: np.ndarray, *,
                         version: int | None = None, publish: Publish | None = None) -> bool:
        """Make `chunks` the live version of `doc_id`: stage, publish, retire the older ones.
        Returns False when a newer version won meanwhile (this one is then removed).

        `publish`, when given, is called with the flip (a no-argument callable) instead of
        flipping directly: it runs the flip together with its own records (the admin registry)
        and returns False when those already hold a newer version. Whatever fails, this version
        is removed again."""
        version = self.next_version(doc_id) if version is None else version
        self.stage(doc_id, version, chunks, dense)

        def go_live() -> None:
            self.publish(doc_id, version, len(chunks))

        try:
            if publish is None:
                go_live()
                current = True
            else:
                current = publish(go_live)
        except VersionSuperseded:  # a newer version swept part of this one: it has lost (and is gone)
            return False
        except BaseException:
            self.discard(doc_id, version)  # never leave a version live that isn't recorded
            raise
        if not current:
            self.discard(doc_id, version)
            return False
        return self.retire(doc_id, version)

    def stage(self, doc_id: str, version: int, chunks: Sequence[Chunk], dense: np.ndarray) -> None:
        """Write `chunks` as pending version `version` of `doc_id`; on any failure none of it stays."""
        if (any(c.doc_id != doc_id for c in chunks) or len({c.content_hash for c in chunks}) > 1
                or len({(c.scope.workspace, c.scope.storage_channel) for c in chunks}) > 1):
            raise ValueError("a version holds the chunks of one version of one document, in one scope")
        if version <= UNVERSIONED:
            raise ValueError(f"versions are numbered from {UNVERSIONED + 1}, not {version}")
        try:
            self._write(chunks, dense, version, PENDING)
        except BaseException:
            self.discard(doc_id, version)
            raise

    def publish(self, doc_id: str, version: int, chunks: int) -> None:
        """Flip a staged version live in one store operation (its state and its `LIVE_SCOPE`, the
        field searches filter on). Raises `VersionSuperseded` (having removed it) when fewer than
        `chunks` of its points are there to flip."""
        staged = _where(_eq("doc_id", doc_id), _eq(VERSION, version), _eq(STATE, PENDING))
        first, _ = self._run(self.backend.scroll, self._filter(staged), ["workspace", "channel"], None, 1)
        if first:  # a version is in one scope (`stage`); the flip's filter holds it to that one
            workspace, channel = first[0]["workspace"], first[0]["channel"]
            self._mutate(self.backend.set_payload,
                      self._filter(_where(*staged["must"], _eq("workspace", workspace), _eq("channel", channel))),
                      {STATE: LIVE, LIVE_SCOPE: scope_key(workspace, channel)})
        live = self._run(self.backend.count,
                         self._filter(_where(_eq("doc_id", doc_id), _eq(VERSION, version), _eq(STATE, LIVE))))
        if live != chunks:
            self.discard(doc_id, version)
            raise VersionSuperseded(doc_id, version)

    def retire(self, doc_id: str, version: int) -> bool:
        """Delete every version of `doc_id` older than `version`, live or pending. Returns False
        (and removes `version` too) when a newer version is already live."""
        self._mutate(self.backend.delete, self._filter(_of_version(doc_id, lt=version)))
        newer_live = _where(_eq("doc_id", doc_id), _eq(STATE, LIVE), {"key": VERSION, "range": {"gt": version}})
        if self._run(self.backend.count, self._filter(newer_live)):
            self.discard(doc_id, version)
            return False
        return True

    def discard(self, doc_id: str, version: int) -> None:
        """Remove one version of a document, whatever its state."""
        self._mutate(self.backend.delete, self._filter(_where(_eq("doc_id", doc_id), _eq(VERSION, version))))

    def delete_document(self, doc_id: str, *, through_version: int | None = None) -> int:
        """Remove a document's chunks (only versions up to `through_version` when given, so a
        newer version written meanwhile survives); returns how many live chunks were removed."""
        where = _where(_eq("doc_id", doc_id)) if through_version is None else _of_version(doc_id, lte=through_version)
        live = self._run(self.backend.count, self._filter({"must": [*where["must"], _eq(STATE, LIVE)]}))
        self._mutate(self.backend.delete, self._filter(where))
        return live

    # ------------------------------------------------------------------ versions

    def next_version(self, doc_id: str) -> int:
        """A version number above every version of `doc_id` stored or handed out in this process."""
        with self._lock:
            stored = max((v.version for v in self.versions(doc_id)), default=UNVERSIONED)
            number = max(stored, self._numbered.get(doc_id, UNVERSIONED)) + 1
            self._numbered[doc_id] = number
            return number

    def versions(self, doc_id: str | None = None) -> list[StoredVersion]:
        """The versions stored of one document (or of all), live and pending, oldest first."""
        where = self._filter(_where(_eq("doc_id", doc_id))) if doc_id is not None else None
        return stored_versions(self._scroll(where, VERSION_FIELDS))

    def live_version(self, doc_id: str) -> StoredVersion | None:
        """The version of `doc_id` searches show (the newest live one), or None."""
        live = [v for v in self.versions(doc_id) if v.live]
        return live[-1] if live else None

    # ------------------------------------------------------------------ reads

    def document_hash(self, doc_id: str) -> str | None:
        """Content hash of the live version of a document, or None if none is live."""
        return newest_hash(self._scroll(self._filter(self._live(_eq("doc_id", doc_id))), VERSION_FIELDS))

    def documents(self, scope: Scope) -> list[dict]:
        """One payload-like dict per document stored *in* `scope` (exact channel) with a `chunks` count."""
        exact = self._live(_eq("workspace", scope.workspace), _eq("channel", scope.storage_channel))
        return documents_from_payloads(self._scroll(self._filter(exact), LISTING_FIELDS))

    def search(self, query: str, query_vector: QueryVector, scope: Scope, limit: int = 5,
               candidates: int | None = None) -> list[Hit]:
        """Hybrid (dense + BM25) search restricted to what `scope` may see, best first.

        Each side fetches `candidates` (default `candidate_limit(limit)`) for the fusion; with the
        same `candidates`, a longer `limit` returns the shorter one's hits first (but for the rare
        old version a replace leaves among the first ones, which a longer search may read as
        superseded and leave out).

        `query_vector` is the query's embedding, or a callable that computes it. Given a
        callable, the BM25 side runs on a worker thread while this thread embeds the query: it
        starts when the model does (`on_model_start`), so the search's GIL-holding store call
        runs while the model, which has let go of the GIL, computes on the other core."""
        if limit <= 0:
            return []
        flt = self._filter(scope_filter(scope))
        n = max(candidates or candidate_limit(limit), limit)
        # Three short steps, each reading only what it needs: the BM25 candidates (while the
        # query is embedded); the dense candidates and the cosines of the BM25 ones in one batch
        # (scored by the store: no vector crosses into Python); the hits that make the cut, read
        # whole.
        if callable(query_vector):
            model_started = threading.Event()
            pending = _in_background(self._bm25_candidates, query, flt, n, model_started)
            try:
                with on_model_start(model_started.set):
                    vector = query_vector()
            finally:
                model_started.set()  # an embedder that never signals, a cached vector, a failure
            bm25 = pending.result()
        else:
            vector = query_vector
            bm25 = self._bm25_candidates(query, flt, n)
        qvec = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        queries = [VectorQuery(dense=qvec)]
        if bm25:
            queries.append(VectorQuery(dense=qvec, among=tuple(c.point_id for c in bm25)))
        with self._lock:
            # The dense candidates come without payloads (reading 50 of them cost more than the
            # scan): the version rule runs on the BM25 candidates' fields and on the best
            # candidates read whole, `limit` at a time (more at once cost ~0.05 ms a point, and
            # rarely does one of the first `limit` lose to a newer version).
            results = self._run(self.backend.query, queries, flt, n, [])
            cosines = {c.point_id: c.score for c in results[1]} if bm25 else {}
            order = fused_order(results[0], bm25, cosines, self.fusion)
            known = {c.point_id: c.payload for c in bm25}
            whole: dict[str, dict] = {}
            ranked: list = []
            read = 0
            while read < len(order) and len(ranked) < limit:
                batch = order[read : read + limit]
                read += len(batch)
                whole.update((r.id, r.payload) for r in self._run(self.backend.retrieve,
                                                                   [r.point_id for r in batch], ALL_FIELDS))
                # A candidate deleted between the steps (a document removed meanwhile) is left out.
                ranked = newest_versions(order[:read], known | whole, limit, eligible=whole)
        return [Hit(chunk=Chunk.from_payload(whole[r.point_id]), score=r.score, dense_score=r.dense_score,
                    sparse_score=r.sparse_score)
                for r in ranked]

    def best_elsewhere(self, query_vector: QueryVector, scope: Scope) -> float | None:
        """The best dense cosine among live chunks of `scope`'s workspace that `scope` may *not*
        read (other channels' documents), or None when there are none. Only the number leaves
        the store: it tells the answerability score that the question's answer more likely lives
        in a document linked to another channel; nothing of that document reaches the asker."""
        flt = self._filter(elsewhere_filter(scope))
        vector = query_vector() if callable(query_vector) else query_vector
        qvec = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        best = self._run(self.backend.query, [VectorQuery(dense=qvec)], flt, 1, [])[0]
        return best[0].score if best else None

    def _bm25_candidates(self, query: str, flt, limit: int, start: threading.Event | None = None) -> list[Candidate]:
        indices, values = sparse.query_vector(query)
        if not indices:  # a query of only stopwords has no BM25 side
            return []
        if start is not None:
            start.wait()
        return self._run(self.backend.query, [VectorQuery(sparse=(indices, values))], flt, limit, RANK_FIELDS)[0]

    def channel_texts(self, workspace: str, channel: str) -> Iterator[str]:
        """The text, title and headings of every live chunk stored in one channel of `workspace`
        (or, for WORKSPACE_WIDE, its workspace-wide ones), one string each: one of the parts a
        scope reads (`Scope.visible_channels`), so what many scopes share is read once."""
        flt = self._filter(_where(_eq(LIVE_SCOPE, scope_key(workspace, channel))))
        for payload in self._scroll(flt, ["text", "title", "heading_path"]):
            yield " ".join([payload.get("text") or "", payload.get("title") or "", *(payload.get("heading_path") or ())])

    def stored_points(self) -> Iterator[tuple[Chunk, int, str]]:
        """Every point as (chunk, version, state) — live and pending alike: what a re-embedding
        (`rewrite_vectors`) must cover."""
        for payload in self._scroll(self._filter(_where()), ALL_FIELDS):
            yield Chunk.from_payload(payload), int(payload.get(VERSION, UNVERSIONED)), payload.get(STATE, LIVE)

    def rewrite_vectors(self, points: Sequence[tuple[Chunk, int, str]], dense: np.ndarray) -> None:
        """Give existing points new dense vectors (same ids, payloads and versions): a change of
        embedding model or backend, never a new version of a document."""
        dense = np.asarray(dense, dtype=np.float32)
        if len(points) != len(dense):
            raise ValueError(f"{len(points)} points but {len(dense)} vectors")
        rows = [
            PointData(point_id(chunk, version), vector.tolist(), sparse.document_vector(embedding_text(chunk)),
                      point_payload(chunk, version, state))
            for (chunk, version, state), vector in zip(points, dense)
        ]
        for start in range(0, len(rows), UPSERT_BATCH):
            self._mutate(self.backend.upsert, rows[start : start + UPSERT_BATCH])
        self.optimize()

    def count(self) -> int:
        """Live (searchable) chunks."""
        return self._run(self.backend.count, self._filter(self._live()))

    # ------------------------------------------------------------------ lifecycle

    def flush(self) -> None:
        self._run(self.backend.flush)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.backend.close()

    def __enter__(self) -> "ChunkStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _live(*conditions: dict) -> Where:
        return _where(*conditions, _eq(STATE, LIVE))

    @property
    def closed(self) -> bool:
        return self._closed

    def _filter(self, where: Where):
        return self.backend.filter(where)

    def _run(self, verb, *args):
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the chunk store {self.backend.name} is closed")
            return verb(*args)

    def _mutate(self, verb, *args):
        """A write: counted in `generation`, so what was read from the store knows it is old."""
        with self._lock:
            self.generation += 1
            return self._run(verb, *args)

    def _write(self, chunks: Sequence[Chunk], dense: np.ndarray, version: int, state: str) -> None:
        dense = np.asarray(dense, dtype=np.float32)
        if len(chunks) != len(dense):
            raise ValueError(f"{len(chunks)} chunks but {len(dense)} vectors")
        if len(chunks) and dense.shape[1] != self.dim:
            raise ValueError(f"vectors have {dense.shape[1]} dimensions, the store {self.dim}")
        points = [
            PointData(point_id(chunk, version), vector.tolist(), sparse.document_vector(embedding_text(chunk)),
                      point_payload(chunk, version, state))
            for chunk, vector in zip(chunks, dense)
        ]
        for start in range(0, len(points), UPSERT_BATCH):
            self._mutate(self.backend.upsert, points[start : start + UPSERT_BATCH])
        self._unsealed += len(points)
        if self._unsealed >= OPTIMIZE_AFTER:
            self.optimize()

    def optimize(self) -> None:
        """Let the backend seal what was written since the last time (Edge: int8 copies, payload
        and sparse indexes; a scoped search at 100k chunks then scans a compact segment instead of
        an append log). Runs at the end of every upload, and by itself every `OPTIMIZE_AFTER`
        written points."""
        with self._lock:
            self._unsealed = 0
            self._run(self.backend.optimize)

    def _scroll(self, flt, fields: list[str]) -> Iterator[dict]:
        offset = None
        while True:
            payloads, offset = self._run(self.backend.scroll, flt, fields, offset, SCROLL_PAGE)
            yield from payloads
            if offset is None:
                return

    def _upgrade_unversioned(self) -> None:
        # Points written before versions existed have neither field: they are complete, live
        # version 0. Writers always set both, so this never touches a write in progress.
        old = self._filter(_where({"is_empty": {"key": VERSION}}))
        if self._run(self.backend.count, old):
            self._mutate(self.backend.set_payload, old, {VERSION: UNVERSIONED, STATE: LIVE})

    def _upgrade_live_scope(self) -> None:
        # Live points written before `LIVE_SCOPE` existed get it, per scope, from their own
        # workspace and channel (searches filter on it alone). Publishing sets it together with
        # the state, so this never touches a version being published.
        missing = _where(_eq(STATE, LIVE), {"is_empty": {"key": LIVE_SCOPE}})
        scopes = {(p["workspace"], p["channel"]) for p in self._scroll(self._filter(missing), ["workspace", "channel"])}
        for workspace, channel in sorted(scopes):
            self._mutate(self.backend.set_payload,
                      self._filter(_where(*missing["must"], _eq("workspace", workspace), _eq("channel", channel))),
                      {LIVE_SCOPE: scope_key(workspace, channel)})


def elsewhere_filter(scope: Scope) -> Where:
    """Live points of the asker's workspace in the channels `scope` may not read."""
    keys = [scope_key(scope.workspace, channel) for channel in scope.visible_channels]
    return {**_where(_eq("workspace", scope.workspace), _eq(STATE, LIVE)),
            "must_not": [{"key": LIVE_SCOPE, "match": {"any": keys}}]}


def scope_filter(scope: Scope) -> Where:
    """The mandatory filter: live points of the asker's workspace in the channels that scope may
    read — one condition on `LIVE_SCOPE`, which only live points carry, keyed by (workspace,
    channel)."""
    keys = [scope_key(scope.workspace, channel) for channel in scope.visible_channels]
    return _where({"key": LIVE_SCOPE, "match": {"any": keys}})
