"""Shared by the knowledge tests: the real sample files and loader helpers; chunks of made-up
documents with hash-embedder vectors, and stores of both kinds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from knowledge.embeddings import HashEmbeddings
from knowledge.loaders import load_document
from knowledge.types import Chunk, LoadedDocument, Scope, document_id

MB = 1024 * 1024
LIMIT = 25 * MB


@pytest.fixture(scope="session")
def samples(shared_dir: Path) -> Path:
    path = shared_dir / "corpora" / "samples"
    if not path.is_dir():
        pytest.skip(f"no samples at {path}")
    return path


def load_sample(samples: Path, name: str) -> LoadedDocument:
    return load_document(name, (samples / name).read_bytes(), max_bytes=LIMIT)


def full_text(doc: LoadedDocument) -> str:
    return "\n".join(s.text for s in doc.sections)


EMBEDDER = HashEmbeddings()


def make_chunks(
    scope: Scope,
    name: str,
    texts: list[str],
    *,
    content_hash: str | None = None,
    ingested_at: float = 1000.0,
    pages: list[int | None] | None = None,
) -> list[Chunk]:
    doc_id = document_id(scope, name)
    h = content_hash or f"hash-{name}-{ingested_at}"
    return [
        Chunk(
            doc_id=doc_id,
            title=name.rsplit(".", 1)[0],
            source=name,
            text=t,
            chunk_index=i,
            page=(pages[i] if pages else None),
            heading_path=("Intro",),
            scope=scope,
            content_hash=h,
            ingested_at=ingested_at,
        )
        for i, t in enumerate(texts)
    ]


def vectors(chunks: list[Chunk]) -> np.ndarray:
    return EMBEDDER.embed_array([c.text for c in chunks])


def qvec(text: str) -> np.ndarray:
    return np.asarray(EMBEDDER.embed_query(text), dtype=np.float32)


def open_kind(kind: str, tmp_path):
    from knowledge.edge_store import EdgeChunkStore
    from knowledge.server_store import QdrantServerStore

    if kind == "edge":
        return EdgeChunkStore(tmp_path / "edge")
    return QdrantServerStore(path=str(tmp_path / "qdrant-local"), collection="test")


@pytest.fixture(params=["edge", "qdrant-local"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, tmp_path):
    s = open_kind(kind, tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def onnx_cache_dir() -> Path:
    """Where the real model's ONNX exports are kept: the product's own cache (or
    DOCENT_EMBEDDING_CACHE_DIR), so the one-off export is paid once per machine, not per run."""
    from knowledge.onnx_embedder import default_cache_dir

    return Path(os.environ.get("DOCENT_EMBEDDING_CACHE_DIR") or default_cache_dir())
