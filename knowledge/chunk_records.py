"""How chunks map to Qdrant points and back, the same for every store: deterministic point ids
and the per-document listing built from chunk payloads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from knowledge.types import Chunk

DIM = 384  # all-MiniLM-L6-v2
UPSERT_BATCH = 256
SCROLL_PAGE = 1024
INDEXED_FIELDS = ("workspace", "channel", "doc_id", "content_hash")
# Everything but the chunk text: enough to list documents without reading every chunk's text.
LISTING_FIELDS = ["doc_id", "title", "source", "url", "content_hash", "ingested_at", "page", "workspace", "channel"]

# Fixed namespace: the same chunk of the same document version always gets the same point id,
# so re-ingesting identical content overwrites instead of duplicating.
_NAMESPACE = uuid.UUID("5b1f8a52-3c0e-4d7a-9a57-0d0c3e6f1a42")


def point_id(chunk: Chunk) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{chunk.doc_id}\x1f{chunk.content_hash}\x1f{chunk.chunk_index}"))


def newest_hash(payloads: Iterable[dict]) -> str | None:
    """Content hash of the newest version among a document's chunk payloads (None if none)."""
    best: tuple[float, str] | None = None
    for p in payloads:
        key = (float(p["ingested_at"]), p["content_hash"])
        if best is None or key > best:
            best = key
    return best[1] if best else None


def documents_from_payloads(payloads: Iterable[dict]) -> list[dict]:
    """One dict per document (newest version only) with its chunk count and highest page."""
    docs: dict[str, dict] = {}
    for p in payloads:
        doc_id = p["doc_id"]
        ingested = float(p["ingested_at"])
        entry = docs.get(doc_id)
        if entry is None or ingested > entry["ingested_at"]:
            entry = docs[doc_id] = {
                "doc_id": doc_id,
                "title": p.get("title"),
                "source": p.get("source"),
                "url": p.get("url"),
                "workspace": p.get("workspace"),
                "channel": p.get("channel"),
                "content_hash": p.get("content_hash"),
                "ingested_at": ingested,
                "pages": None,
                "chunks": 0,
            }
        elif ingested < entry["ingested_at"]:
            continue  # an older version still being replaced: not part of the listing
        entry["chunks"] += 1
        page = p.get("page")
        if page is not None and (entry["pages"] is None or page > entry["pages"]):
            entry["pages"] = int(page)
    return sorted(docs.values(), key=lambda d: (d["title"] or "", d["doc_id"]))
