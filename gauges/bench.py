"""`docent bench`: ingest throughput, scoped hybrid query latency and memory, measured on the
real code paths (KnowledgeBase ingest into an Edge store; HybridRetriever search with the query
embedding included).

Query latency runs on synthetic chunks (random unit vectors + generated text) so 100k chunks
don't need hours of embedding; the search path is the same one users hit.
"""

from __future__ import annotations

import logging
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.types import WORKSPACE_WIDE, Chunk, Scope

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

INGEST_TARGET_CHUNKS = 300
_WORKSPACES = ["T-bench-1", "T-bench-2", "T-bench-3", "T-bench-4"]
_CHANNELS = ["C-eng", "C-ops", "C-sales", "C-hr", WORKSPACE_WIDE]
_INSERT_BATCH = 2000


def run_bench(
    *,
    embedder,
    work_dir: Path,
    sizes: Sequence[int] = (10_000, 100_000),
    queries: int = 200,
    texts: list[str] | None = None,
    corpus_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> dict:
    """Measure and return ingest/model throughput, query p50/p95 per store size, peak RSS."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=work_dir))
    try:
        if texts is None:
            texts = _corpus_texts(corpus_dir) if corpus_dir else None
        if not texts:
            texts = generated_documents(random.Random(1), n=40)
        ingest = measure_ingest(texts, embedder=embedder, store_dir=run_dir / "ingest", on_progress=on_progress)
        p50: dict[str, float] = {}
        p95: dict[str, float] = {}
        store_p50: dict[str, float] = {}
        store_p95: dict[str, float] = {}
        embed_lat: list[float] = []
        rerank_lat: list[float] = []
        cache_hits = 0
        for size in sizes:
            measured = measure_query_latency(
                size, embedder=embedder, store_dir=run_dir / f"query-{size}", queries=queries,
                on_progress=on_progress,
            )
            lat, store_lat, embed_only = measured
            cache_hits += measured.cache_hits
            p50[str(size)] = round(statistics.median(lat), 2)
            p95[str(size)] = round(float(np.percentile(lat, 95)), 2)
            store_p50[str(size)] = round(statistics.median(store_lat), 2)
            store_p95[str(size)] = round(float(np.percentile(store_lat, 95)), 2)
            embed_lat += embed_only
            rerank_lat += list(measured.rerank)
        # The path users run: the whole `docent ingest DIR` process, document scan included.
        folder = measure_folder_ingest(corpus_dir, work_dir=run_dir) if corpus_dir else {}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        **ingest,
        **folder,
        "query_p50_ms": p50,
        "query_p95_ms": p95,
        # The store's share alone (same queries, vector already embedded): separates the
        # search from the model when the CPU is shared.
        "store_search_p50_ms": store_p50,
        "store_search_p95_ms": store_p95,
        # One query's embedding alone (same queries, same run): the model's share of a query.
        "query_embed_p50_ms": round(statistics.median(embed_lat), 2) if embed_lat else None,
        "query_embed_p95_ms": round(float(np.percentile(embed_lat, 95)), 2) if embed_lat else None,
        # The answer path's next stage after retrieval: the best candidates reordered by their
        # best sentence (each embedded; the generated chunks are one long "sentence" each).
        "rerank_p50_ms": round(statistics.median(rerank_lat), 2) if rerank_lat else None,
        "rerank_p95_ms": round(float(np.percentile(rerank_lat, 95)), 2) if rerank_lat else None,
        # Timed queries the query-vector cache answered: 0 means every figure above paid the model.
        "query_cache_hits": cache_hits,
        "embedding_backend": getattr(embedder, "backend", "") or None,
        "vector_space": getattr(embedder, "vector_space", None) or type(embedder).__name__,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cores": os.cpu_count(),
    }


# ---------------------------------------------------------------- ingest


def measure_ingest(texts: list[str], *, embedder, store_dir: Path, on_progress: ProgressFn | None = None) -> dict:
    """Chunks/s through the real ingest path vs the raw model on the very same chunk texts."""
    from knowledge.chunking import chunk_document
    from knowledge.edge_store import EdgeChunkStore
    from knowledge.ingest import EMBED_BATCH, KnowledgeBase, embedding_text
    from knowledge.types import document_id

    scope = Scope("T-bench-ingest", "C-bench")
    store = EdgeChunkStore(store_dir)
    try:
        kb = KnowledgeBase(store, embedder)
        docs = []
        doc_texts: list[list[str]] = []
        for i, text in enumerate(texts):
            doc = kb.load(f"bench-{i:04d}.md", text.encode())
            chunks = chunk_document(doc, scope, doc_id=document_id(scope, doc.name), ingested_at=0.0,
                                    chunk_tokens=kb.chunk_tokens, overlap_tokens=kb.overlap_tokens)
            docs.append(doc)
            doc_texts.append([embedding_text(c) for c in chunks])
        chunk_texts = [t for ts in doc_texts for t in ts]
        embedder.embed_array(chunk_texts[:8])  # warm-up: first call pays lazy initialisation

        # Model and ingest alternate document by document so both see the same CPU weather
        # (the machine is shared; measuring one after the other skews the ratio).
        model_s = ingest_s = 0.0
        stored = 0
        for i, (doc, ts) in enumerate(zip(docs, doc_texts)):
            started = time.perf_counter()
            for start in range(0, len(ts), EMBED_BATCH):
                embedder.embed_array(ts[start : start + EMBED_BATCH])
            model_s += time.perf_counter() - started
            started = time.perf_counter()
            stored += kb.ingest_loaded(doc, scope).chunks
            ingest_s += time.perf_counter() - started
            if on_progress:
                on_progress("model", i + 1, len(docs))
                on_progress("ingest", i + 1, len(docs))
    finally:
        store.close()
    return {
        "ingest_chunks": stored,
        "ingest_chunks_per_s": round(stored / ingest_s, 2),
        "model_chunks_per_s": round(len(chunk_texts) / model_s, 2),
        "ingest_over_model": round((stored / ingest_s) / (len(chunk_texts) / model_s), 3),
    }


CHECKOUT = Path(__file__).resolve().parents[1]
_SUMMARY = re.compile(r"(\d+) of (\d+) documents ingested or updated \((\d+) chunks\)")


def measure_command(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                    log_path: Path | None = None) -> tuple[float, float, str]:
    """Run one child process to its end: (wall seconds, its peak RSS in MB, its stdout).

    The peak RSS is the child's own high-water mark (`VmHWM` in /proc/PID/status, polled until
    it exits). Not `ru_maxrss`: Linux carries the parent's RSS at fork into the child's across
    exec, so a child of a big benchmark process would report the benchmark's size. Off Linux,
    the `ru_maxrss` from `os.wait4`. The child's own children (docent's PDF workers) are not in
    it; Markdown and text never start one.
    Raises RuntimeError when the child fails (its stderr is in `log_path`, or the message)."""
    out = tempfile.TemporaryFile()
    err = open(log_path, "wb") if log_path else tempfile.TemporaryFile()
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak_kib = 0
        status_file = Path(f"/proc/{proc.pid}/status")
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, _vm_hwm_kib(status_file))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv[:4])} … exited {proc.returncode}: {err.read()[-2000:].decode('utf-8', 'replace')}")
    finally:
        out.close()
        err.close()
    return wall, (peak_kib or usage.ru_maxrss) / 1024, stdout  # both in KiB on Linux


def _vm_hwm_kib(status_file: Path) -> int:
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass  # gone meanwhile, or not Linux
    return 0


def docent_ingest_command(folder: Path, checkout: Path = CHECKOUT) -> tuple[list[str], dict[str, str], Path]:
    """argv, environment and cwd that run `docent ingest FOLDER` from `checkout`'s code (its
    source folder first on the path: the same code as the caller when `checkout` is its own)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    return [sys.executable, "-m", "connectors.cli", "ingest", str(Path(folder).resolve())], env, checkout


def measure_folder_ingest(folder: Path, *, work_dir: Path, checkout: Path = CHECKOUT) -> dict:
    """`docent ingest FOLDER` as users run it — a new process (imports, model load, document
    scan, registry) into a fresh data dir: wall seconds and peak RSS of that process."""
    data_dir = Path(tempfile.mkdtemp(prefix="ingest-folder-", dir=work_dir))
    argv, env, cwd = docent_ingest_command(folder, checkout)
    env["DOCENT_DATA_DIR"] = str(data_dir)
    try:
        wall, rss_mb, stdout = measure_command(argv, env=env, cwd=cwd)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    summary = _SUMMARY.search(" ".join(stdout.split()))
    return {
        "ingest_folder_s": round(wall, 2),
        "ingest_peak_rss_mb": round(rss_mb, 1),
        "ingest_folder_documents": int(summary.group(1)) if summary else None,
        "ingest_folder_chunks": int(summary.group(3)) if summary else None,
    }


def _corpus_texts(folder: Path, target_chunks: int = INGEST_TARGET_CHUNKS) -> list[str]:
    """Markdown files of a real corpus until roughly `target_chunks` chunks' worth of text."""
    out: list[str] = []
    budget = target_chunks * 900  # ≈ characters in one 256-piece chunk
    for path in sorted(Path(folder).rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text.strip()) < 200:
            continue
        out.append(text)
        budget -= len(text)
        if budget <= 0:
            break
    return out


# ---------------------------------------------------------------- query latency


def _vocabulary(rng: random.Random, n: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def _zipf_text(rng: random.Random, vocab: list[str], words: int) -> str:
    # Zipf-like word frequencies so BM25 posting lists look like real text's.
    n = len(vocab)
    return " ".join(vocab[min(n - 1, int(rng.paretovariate(1.1)) - 1)] if rng.random() < 0.6
                    else vocab[rng.randrange(n)] for _ in range(words))


def generated_documents(rng: random.Random, n: int = 40, paragraphs: int = 8) -> list[str]:
    vocab = _vocabulary(rng)
    docs = []
    for d in range(n):
        body = "\n\n".join(_zipf_text(rng, vocab, rng.randint(60, 140)) + "." for _ in range(paragraphs))
        docs.append(f"# Generated document {d}\n\n{body}\n")
    return docs


def build_synthetic_store(size: int, store_dir: Path, *, dim: int = 384, seed: int = 7,
                          on_progress: ProgressFn | None = None, words: int = 3000, scope: Scope | None = None):
    """An Edge store of `size` chunks: random unit vectors, text generated over `words` distinct
    words, in many scopes (or all in `scope`)."""
    from knowledge.edge_store import EdgeChunkStore

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, words)
    store = EdgeChunkStore(store_dir, dim=dim)
    per_doc = 20
    for start in range(0, size, _INSERT_BATCH):
        n = min(_INSERT_BATCH, size - start)
        vectors = nprng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = []
        for i in range(start, start + n):
            doc = i // per_doc
            home = scope or Scope(_WORKSPACES[doc % len(_WORKSPACES)], _CHANNELS[(doc // len(_WORKSPACES)) % len(_CHANNELS)])
            chunks.append(
                Chunk(doc_id=f"doc-{doc}", title=f"Document {doc}", source=f"doc-{doc}.md",
                      text=_zipf_text(rng, vocab, rng.randint(80, 180)), chunk_index=i % per_doc,
                      page=None, heading_path=(), scope=home, content_hash=f"h{doc}", ingested_at=1.0)
            )
        store.add(chunks, vectors)
        if on_progress:
            on_progress(f"build:{size}", start + n, size)
    store.optimize()  # what the end of an upload does
    store.flush()
    return store, vocab


def measure_query_latency(size: int, *, embedder, store_dir: Path, queries: int = 200, seed: int = 11,
                          on_progress: ProgressFn | None = None) -> QueryLatency:
    """Milliseconds per scoped hybrid retrieval (query embedding included) at `size` chunks,
    per store search alone, per query embedding alone, and per sentence rerank of the best
    candidates (the answer path's next stage), for the same queries."""
    from knowledge.fusion import candidate_limit
    from knowledge.query_vectors import SENTENCE_CACHE_SIZE, QueryVectorCache, normalized_query
    from knowledge.rerank import SentenceReranker
    from knowledge.retriever import HybridRetriever
    from knowledge.spelling import Speller

    store, vocab = build_synthetic_store(size, store_dir, on_progress=on_progress)
    rng = random.Random(seed)
    cache = QueryVectorCache()  # the user path's cache, fresh; no generated query repeats (below)
    sentence_cache = QueryVectorCache(SENTENCE_CACHE_SIZE)
    reranker = SentenceReranker(embedder, sentence_vectors=sentence_cache)
    seen: set[str] = set()

    def fresh_query(words: Callable[[], str]) -> str:
        # Zipf text repeats short queries: a repeat would be answered by the cache and time
        # nothing of the model, so draw again until the (normalised) query is new.
        while True:
            query = " ".join(words().split())
            key = normalized_query(query)
            if key not in seen:
                seen.add(key)
                return query

    speller = Speller(store)  # the user path corrects spelling first (the generated words are all in the store)
    try:
        retrievers = [
            HybridRetriever(store=store, embedder=embedder, scope=Scope(w, c), query_vectors=cache, speller=speller)
            for w in _WORKSPACES for c in _CHANNELS[:-1] + [None]
        ]
        for r in retrievers:  # warm-up, each scope's words read for the speller first
            speller.warm(r.scope)
            r.search(fresh_query(lambda: " ".join(rng.choice(vocab) for _ in range(4))))
        latencies: list[float] = []
        store_latencies: list[float] = []
        embed_latencies: list[float] = []
        rerank_latencies: list[float] = []
        for i in range(queries):
            retriever = rng.choice(retrievers)
            query = fresh_query(lambda: _zipf_text(rng, vocab, rng.randint(3, 8)))
            started = time.perf_counter()
            hits = retriever.search(query)
            latencies.append((time.perf_counter() - started) * 1000)
            if any(h.chunk.scope.workspace != retriever.scope.workspace for h in hits):
                raise RuntimeError("a search returned a chunk from another workspace")
            started = time.perf_counter()
            vector = np.asarray(embedder.embed_query(query), dtype=np.float32)
            embed_latencies.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.search(query, vector, retriever.scope, retriever.k)
            store_latencies.append((time.perf_counter() - started) * 1000)
            candidates = store.search(query, vector, retriever.scope, reranker.depth,
                                      candidates=candidate_limit(retriever.k))  # as the retriever asks
            sentence_cache.clear()  # the synthetic passages recur across queries: time a cold rerank
            started = time.perf_counter()
            reranker.rerank(vector, candidates)
            rerank_latencies.append((time.perf_counter() - started) * 1000)
            if on_progress and ((i + 1) % 50 == 0 or i + 1 == queries):
                on_progress(f"query:{size}", i + 1, queries)
    finally:
        store.close()
    return QueryLatency(latencies, store_latencies, embed_latencies, cache.hits, rerank_latencies)


@dataclass(frozen=True)
class QueryLatency:
    """One size's query figures (milliseconds per query) and what else that run saw."""

    hybrid: list[float]
    store: list[float]
    embed: list[float]
    cache_hits: int  # queries the query-vector cache answered (the generated ones don't repeat)
    rerank: Sequence[float] = ()  # a cold sentence rerank of the best candidates (empty cache), vector given

    def __iter__(self):  # unpacks as (hybrid, store, embed)
        return iter((self.hybrid, self.store, self.embed))
