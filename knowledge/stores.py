"""Opens the chunk store the settings ask for: a Qdrant server when a URL is set, otherwise the
embedded Qdrant Edge shard in the data folder."""

from __future__ import annotations

import logging
from pathlib import Path

from knowledge.embeddings import DIM
from knowledge.store import ChunkStore

log = logging.getLogger(__name__)


def open_store(
    *,
    qdrant_url: str | None,
    edge_path: Path,
    api_key: str | None = None,
    collection: str = "docent",
    dim: int = DIM,
) -> ChunkStore:
    """`dim` is the embedder's vector size (`Embedder.dim`): a store is created with it."""
    if qdrant_url:
        from knowledge.server_store import QdrantServerStore

        log.info("chunk store: Qdrant server", extra={"collection": collection})
        return QdrantServerStore(qdrant_url, api_key=api_key, collection=collection, dim=dim)
    from knowledge.edge_store import EdgeChunkStore

    log.info("chunk store: Qdrant Edge", extra={"path": str(edge_path)})
    return EdgeChunkStore(Path(edge_path), dim=dim)
