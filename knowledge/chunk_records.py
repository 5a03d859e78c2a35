"""How chunks map to Qdrant points and back, the same for every store: the point layout (vector
names, indexed and listed payload fields, batch sizes, point ids), document versions, and the
per-document listing built from chunk payloads.

Every point carries its document version: `version` (an integer, higher = newer) and `state`
(`pending` while the version is being written, `live` once it is complete). Only live points are
ever searched or listed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.types import Chunk, Scope

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
UPSERT_BATCH = 256
SCROLL_PAGE = 1024

VERSION = "version"
STATE = "state"
PENDING = "pending"
LIVE = "live"
# Points written before versions existed are version 0; every versioned write is >= 1.
UNVERSIONED = 0
# The one field a search filters on: the point's scope (workspace and channel), carried by live
# points only — a pending point has none, so it can't match any search. One indexed condition
# instead of three (workspace, channel, state): a scoped search at 100k chunks scans the
# scope's points straight from one posting list (see `knowledge.store.scope_filter`).
LIVE_SCOPE = "live_scope"


def scope_key(workspace: str, channel: str) -> str:
    """The `LIVE_SCOPE` value of a point stored in (workspace, storage channel): JSON, so no
    workspace or channel name can make two different scopes share a key."""
    return json.dumps([workspace, channel], ensure_ascii=False)


# Payload fields with an index, by kind (the store maps the kind to its backend's schema type).
INDEXED_FIELDS = {
    "workspace": "keyword",
    "channel": "keyword",
    "doc_id": "keyword",
    "content_hash": "keyword",
    VERSION: "integer",
    STATE: "keyword",
    LIVE_SCOPE: "tenant",  # a keyword index the store lays out by value (Qdrant's is_tenant)
}
# Everything but the chunk text: enough to list documents without reading every chunk's text.
LISTING_FIELDS = [
    "doc_id", "title", "source", "url", "content_hash", "ingested_at", "page", "workspace", "channel", VERSION,
]
VERSION_FIELDS = ["doc_id", "workspace", "channel", "content_hash", "ingested_at", VERSION, STATE]
# What ranking a search's candidates reads (which version of a document is newest): the rest of
# a payload is read for the few hits that make the cut only.
RANK_FIELDS = ["doc_id", "ingested_at", VERSION]

# Fixed namespace: the same chunk of the same document version always gets the same point id,
# so re-writing identical content overwrites instead of duplicating.
_NAMESPACE = uuid.UUID("5b1f8a52-3c0e-4d7a-9a57-0d0c3e6f1a42")


def point_id(chunk: Chunk, version: int = UNVERSIONED) -> str:
    # The version is part of the id: a pending write of identical content must never overwrite
    # the live points of another version.
    key = f"{chunk.doc_id}\x1f{chunk.content_hash}\x1f{chunk.chunk_index}"
    if version != UNVERSIONED:
        key += f"\x1f{version}"
    return str(uuid.uuid5(_NAMESPACE, key))


# Every payload field a point carries: enough to rebuild its Chunk, version and state.
ALL_FIELDS = ["doc_id", "title", "source", "text", "chunk_index", "page", "heading_path", "workspace", "channel",
              "content_hash", "ingested_at", "url", VERSION, STATE]


def point_payload(chunk: Chunk, version: int, state: str) -> dict:
    payload = {**chunk.payload(), VERSION: version, STATE: state}
    if state == LIVE:
        payload[LIVE_SCOPE] = scope_key(payload["workspace"], payload["channel"])
    return payload


def version_key(payload: dict) -> tuple[int, float]:
    """Which of two versions of a document is newer: the higher version number. `ingested_at`
    only orders unversioned points (written before versions existed), whose numbers tie."""
    return int(payload.get(VERSION, UNVERSIONED)), float(payload["ingested_at"])


@dataclass(frozen=True)
class StoredVersion:
    """One version of a document as the store holds it."""

    doc_id: str
    scope: Scope
    version: int
    live: bool
    content_hash: str
    chunks: int
    ingested_at: float


def stored_versions(payloads: Iterable[dict]) -> list[StoredVersion]:
    """Group point payloads (VERSION_FIELDS) into versions, oldest first per document."""
    groups: dict[tuple[str, int, str], list[dict]] = {}
    for p in payloads:
        groups.setdefault((p["doc_id"], int(p.get(VERSION, UNVERSIONED)), p["content_hash"]), []).append(p)
    versions = [
        StoredVersion(
            doc_id=doc_id, scope=Scope(group[0]["workspace"], group[0]["channel"]), version=version,
            live=any(p.get(STATE, LIVE) == LIVE for p in group), content_hash=content_hash,
            chunks=len(group), ingested_at=max(float(p["ingested_at"]) for p in group),
        )
        for (doc_id, version, content_hash), group in groups.items()
    ]
    return sorted(versions, key=lambda v: (v.doc_id, v.version, v.ingested_at))


def newest_hash(payloads: Iterable[dict]) -> str | None:
    """Content hash of the newest version among a document's chunk payloads (None if none)."""
    best: tuple[tuple[int, float], str] | None = None
    for p in payloads:
        key = (version_key(p), p["content_hash"])
        if best is None or key > best:
            best = key
    return best[1] if best else None


def documents_from_payloads(payloads: Iterable[dict]) -> list[dict]:
    """One dict per document (newest version only) with its chunk count and highest page."""
    docs: dict[str, dict] = {}
    newest: dict[str, tuple[int, float]] = {}
    for p in payloads:
        doc_id = p["doc_id"]
        key = version_key(p)
        entry = docs.get(doc_id)
        if entry is None or key > newest[doc_id]:
            newest[doc_id] = key
            entry = docs[doc_id] = {
                "doc_id": doc_id,
                "title": p.get("title"),
                "source": p.get("source"),
                "url": p.get("url"),
                "workspace": p.get("workspace"),
                "channel": p.get("channel"),
                "content_hash": p.get("content_hash"),
                "ingested_at": key[1],
                "pages": None,
                "chunks": 0,
            }
        elif key < newest[doc_id]:
            continue  # an older version still being replaced: not part of the listing
        entry["chunks"] += 1
        page = p.get("page")
        if page is not None and (entry["pages"] is None or page > entry["pages"]):
            entry["pages"] = int(page)
    return sorted(docs.values(), key=lambda d: (d["title"] or "", d["doc_id"]))


# The title/heading prefix added to a chunk is cut to this many characters so it can't crowd the
# chunk itself out of the model's 256-piece window.
CONTEXT_PREFIX_MAX_CHARS = 160


def embedding_text(chunk: Chunk) -> str:
    """What is indexed for a chunk — by the embedding model and by BM25: title and heading path
    as context, then the text.

    The context helps retrieval ("vacation policy" finds a chunk under that heading whose text
    never says it; "q3 apple" finds the pages of "2023 Q3 AAPL.pdf"); the chunk's own `text`
    stays clean for citation.
    """
    context = [chunk.title] if chunk.title else []
    context += [h for h in chunk.heading_path if h != chunk.title]
    prefix = " › ".join(context)
    if len(prefix) > CONTEXT_PREFIX_MAX_CHARS:
        prefix = prefix[:CONTEXT_PREFIX_MAX_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{prefix}\n\n{chunk.text}" if prefix else chunk.text
