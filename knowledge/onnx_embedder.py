"""all-MiniLM-L6-v2 through ONNX Runtime: `tokenizers` + `onnxruntime` + numpy, no torch.

The ONNX file is exported from the packaged model folder on first use (`ensure_onnx_model`):
once per model version and recipe, into a cache folder, by a child process (`knowledge.onnx_export`,
which needs torch) so this process stays torch-free. The export is written under a temporary
name and renamed into place, under a file lock, so two processes starting at once export once
and neither can read a half-written file. Nothing is downloaded.

The exported graph already pools and normalises; this module tokenizes exactly as
sentence-transformers does (the packaged tokenizer.json, truncation at the model's
max_seq_length, padding to the longest text of a batch), batches texts of similar length
together (fp32; int8 runs one text at a time, see below), and runs the graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from knowledge.embeddings import DIM, Embedder, default_model_path, model_name_of, model_starting

log = logging.getLogger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
# Bump when the export or quantization recipe changes: old cached files are then not reused.
RECIPE = "pooled-opset17-s8sym-perchannel-v1"
_EXPORT_TIMEOUT_S = 900


class OnnxExportFailed(RuntimeError):
    """The one-off export to ONNX failed; the message says why and how to avoid it."""


def default_cache_dir() -> Path:
    """Where exported models live unless `DOCENT_EMBEDDING_CACHE_DIR` says otherwise (XDG)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "docent" / "onnx"


def _fingerprint(model_dir: Path) -> str:
    """Identifies the model version without hashing 90 MB at every start: sizes and mtimes of
    the weights, the configs' bytes, the recipe."""
    h = hashlib.sha256(RECIPE.encode())
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json"):
        f = model_dir / name
        if f.exists():
            h.update(name.encode() + f.read_bytes())
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def ensure_onnx_model(model_dir: Path, backend: str, cache_dir: Path | None = None) -> Path:
    """The ONNX file for `backend` ("onnx" or "onnx-int8"), exported first if it isn't cached."""
    if backend not in _FILES:
        raise ValueError(f"unknown ONNX backend {backend!r}; expected one of {', '.join(ONNX_BACKENDS)}")
    model_dir = Path(model_dir).resolve()
    name = model_name_of(model_dir)
    folder = Path(cache_dir or default_cache_dir()) / f"{name}-{_fingerprint(model_dir)}"
    target = folder / _FILES[backend]
    if target.exists():
        return target
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if target.exists():  # another process exported it while this one waited
            return target
        _export(model_dir, name, folder, want_int8=backend == "onnx-int8")
    return target


def _export(model_dir: Path, name: str, folder: Path, *, want_int8: bool) -> None:
    started = time.monotonic()
    log.info("exporting %s to ONNX%s (once; cached in %s)", name, " + int8" if want_int8 else "", folder)
    cached_fp32 = folder / _FILES["onnx"]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        fp32, int8 = Path(tmp) / _FILES["onnx"], Path(tmp) / _FILES["onnx-int8"]
        if cached_fp32.exists():  # only the int8 file is missing: quantizing needs no torch
            args = ["quantize", str(cached_fp32), str(int8)]
        else:
            args = ["export", str(model_dir), str(fp32)] + ([str(int8)] if want_int8 else [])
        _run_exporter(args, name)
        # Renames within one folder are atomic: readers see no file or a whole one.
        if not cached_fp32.exists():
            os.replace(fp32, cached_fp32)
        if want_int8:
            os.replace(int8, folder / _FILES["onnx-int8"])
    log.info("exported %s to ONNX in %.1f s", name, time.monotonic() - started)


def _run_exporter(args: list[str], model_name: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    # The child must find this package even when docent runs from a source checkout.
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "knowledge.onnx_export", *args]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=_EXPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise OnnxExportFailed(f"exporting {model_name} to ONNX took over {_EXPORT_TIMEOUT_S} s") from e
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OnnxExportFailed(
            f"exporting {model_name} to ONNX failed ({tail[0]}); "
            "install docent's dependencies (torch, onnx) or set DOCENT_EMBEDDING_BACKEND=torch"
        )


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length") or 256)
    return 256


def _check_mean_pooling(model_dir: Path) -> None:
    config = model_dir / "1_Pooling" / "config.json"
    if config.exists() and not json.loads(config.read_text()).get("pooling_mode_mean_tokens", False):
        raise ValueError(f"{model_dir.name} doesn't use mean pooling; the ONNX backend only implements that")


_session_lock = threading.Lock()
# From this many texts (a batch of chunks, not a query) int8 runs one text per core at once.
_PARALLEL_MIN_TEXTS = 8


@lru_cache(maxsize=4)
def _load_session(onnx_path: str, threads: int):
    """One ONNX Runtime session per file and thread count per process (`run` is thread-safe)."""
    import onnxruntime as ort

    with _session_lock:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # the graph is one chain of ops
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CPU provider's notes aren't for users
        return ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


class OnnxMiniLMEmbeddings(Embedder):
    """A sentence-transformers model folder run by ONNX Runtime; same vectors as the torch
    backend for "onnx" (fp32), close to them for "onnx-int8" (cosine ≈ 0.99)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        backend: str = "onnx-int8",
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ):
        from tokenizers import Tokenizer

        self.model_path = Path(model_path) if model_path else default_model_path()
        self.model_name = model_name_of(self.model_path)
        self.backend = backend
        self.batch_size = batch_size
        # int8 runs one text per call: dynamic quantization scales activations per input tensor,
        # so in a batch a text's vector depends on its neighbours and their padding (cosine to
        # itself alone down to 0.98). One at a time, a text always gets the same vector — at
        # ingest, on re-embedding, as a query — and it measured faster (no padding; 22 vs 17
        # passages/s) with a quarter of the memory (peak RSS 172 vs 650 MB).
        self._rows_per_run = 1 if backend == "onnx-int8" else batch_size
        _check_mean_pooling(self.model_path)
        self.onnx_path = ensure_onnx_model(self.model_path, backend, Path(cache_dir) if cache_dir else None)

        tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        # The packaged tokenizer.json truncates at 128 and pads every text to 128; the model reads
        # max_seq_length (256) pieces and sentence-transformers pads to the batch's longest text.
        tokenizer.enable_truncation(max_length=_max_seq_length(self.model_path))
        tokenizer.no_padding()
        self._tokenizer = tokenizer

        # fp32 runs batches: one session with every core. int8 runs one text per call, and one
        # single-threaded run per core at once beats one run split over every core — no hand-offs
        # between threads inside each small matrix product (measured on 2 busy cores: 5.7 vs 3.4
        # passages/s, identical vectors); a lone query loses ~0.1 ms p50 on one thread (2.0 vs
        # 1.9 ms). So int8 has one single-threaded session — the model loaded once — and `embed_array`
        # spreads a batch over `_workers` threads.
        self._workers = threads or os.cpu_count() or 1
        one_text = self._rows_per_run == 1
        self._session = _load_session(str(self.onnx_path), 1 if one_text else self._workers)
        self._input_names = {i.name for i in self._session.get_inputs()}
        width = self._session.get_outputs()[0].shape[-1]
        self.dim = width if isinstance(width, int) else DIM

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        # Longest first, like sentence-transformers: each batch pads to similar lengths.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if self._rows_per_run == 1 and self._workers > 1 and len(texts) >= _PARALLEL_MIN_TEXTS:
            # Each text still gets the very same vector: same session, one text per run.
            with ThreadPoolExecutor(self._workers) as pool:
                list(pool.map(lambda part: self._run(self._session, encodings, lengths, part, out),
                              [order[k :: self._workers] for k in range(self._workers)]))
            return out
        self._run(self._session, encodings, lengths, order, out)
        return out

    def _run(self, session, encodings, lengths: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
        """Embed the texts `order` names, `_rows_per_run` at a time, into their rows of `out`."""
        for start in range(0, len(order), self._rows_per_run):
            idx = order[start : start + self._rows_per_run]
            width = int(lengths[idx].max())
            # Padding positions are masked out of attention and pooling, so their id doesn't matter.
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encodings[i]
                n = len(e.ids)
                ids[row, :n] = e.ids
                mask[row, :n] = 1
                types[row, :n] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            model_starting()
            out[idx] = session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
