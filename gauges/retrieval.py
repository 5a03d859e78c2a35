"""Retrieval quality gauge on BEIR-format data sets (corpus.jsonl, queries.jsonl, qrels/test.tsv).

The corpus is indexed through the same store and hybrid search users get: each document becomes
one or more passage chunks in an `EdgeChunkStore`, and a document's score is its best chunk's.
Document embeddings are cached on disk (keyed by model path and vector space + corpus hash + passage settings) so
a rerun only pays for the queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.types import Chunk, Scope

log = logging.getLogger(__name__)

# Passages no longer than the model reads well (MiniLM truncates at 256 word pieces); long
# documents are cut into even parts so no part is a tiny tail.
PASSAGE_MAX_WORDS = 200
EVAL_SCOPE = Scope.workspace_wide("beir")

ProgressFn = Callable[[str, int, int], None]


# ---------------------------------------------------------------- metrics (pure functions)


def dcg_at_k(gains: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of a ranked list of gains (linear gain, log2 discount)."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 10) -> float:
    """nDCG@k with graded gains = the qrels grade (as BEIR / pytrec_eval compute it)."""
    ideal = sorted((g for g in relevance.values() if g > 0), reverse=True)
    idcg = dcg_at_k(ideal, k)
    if idcg == 0:
        return 0.0
    gains = [max(relevance.get(doc, 0.0), 0.0) for doc in ranked]
    return dcg_at_k(gains, k) / idcg


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 10) -> float:
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevance.get(doc, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


# ---------------------------------------------------------------- data set


@dataclass(frozen=True)
class BeirSet:
    corpus: dict[str, tuple[str, str]]  # doc id → (title, text)
    queries: dict[str, str]  # only queries that have qrels
    qrels: dict[str, dict[str, float]]
    corpus_hash: str


def load_beir(beir_dir: Path, split: str = "test") -> BeirSet:
    beir_dir = Path(beir_dir)
    corpus_path = beir_dir / "corpus.jsonl"
    digest = hashlib.sha256()
    corpus: dict[str, tuple[str, str]] = {}
    with corpus_path.open("rb") as f:
        for line in f:
            digest.update(line)
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    qrels: dict[str, dict[str, float]] = {}
    with (beir_dir / "qrels" / f"{split}.tsv").open() as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (i == 0 and not parts[2].lstrip("-").isdigit()):
                continue  # header
            qrels.setdefault(parts[0], {})[parts[1]] = float(parts[2])
    queries: dict[str, str] = {}
    with (beir_dir / "queries.jsonl").open() as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = row["text"]
    qrels = {q: r for q, r in qrels.items() if q in queries}
    return BeirSet(corpus, queries, qrels, digest.hexdigest())


def split_passages(title: str, text: str, max_words: int = PASSAGE_MAX_WORDS) -> list[str]:
    """Title + text cut into even word windows of at most `max_words` (title kept on each)."""
    words = text.split()
    parts = max(1, math.ceil(len(words) / max_words))
    size = math.ceil(len(words) / parts) if words else 0
    out = []
    for p in range(parts):
        body = " ".join(words[p * size : (p + 1) * size])
        out.append(f"{title}\n{body}".strip() if title else body)
    return out


def _passages(data: BeirSet) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    owners: list[str] = []
    for doc_id, (title, text) in data.corpus.items():
        for passage in split_passages(title, text):
            texts.append(passage)
            owners.append(doc_id)
    return texts, owners


def _model_key(embedder) -> str:
    """The model folder and the vector space: one model's backends give different vectors."""
    space = getattr(embedder, "vector_space", None) or getattr(embedder, "model_name", "")
    return f"{getattr(embedder, 'model_path', type(embedder).__name__)}\x1f{space}"


def cached_embeddings(
    texts: list[str], *, embedder, cache_file: Path, on_progress: ProgressFn | None = None,
    batch: int = 256,
) -> np.ndarray:
    """Embed `texts` once; later calls with the same cache file load it from disk."""
    if cache_file.exists():
        arr = np.load(cache_file)
        if arr.shape[0] == len(texts):
            return arr
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(embedder.embed_array(texts[start : start + batch]))
        if on_progress:
            on_progress("embed", min(start + batch, len(texts)), len(texts))
    arr = np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp.npy")
    np.save(tmp, arr.astype(np.float32))
    tmp.replace(cache_file)
    return arr


def corpus_embeddings(data: BeirSet, *, embedder, work_dir: Path, on_progress=None):
    texts, owners = _passages(data)
    key = hashlib.sha256(
        f"{_model_key(embedder)}\x1f{data.corpus_hash}\x1f{PASSAGE_MAX_WORDS}".encode()
    ).hexdigest()[:20]
    vectors = cached_embeddings(
        texts, embedder=embedder, cache_file=Path(work_dir) / f"beir-emb-{key}.npy",
        on_progress=on_progress,
    )
    return texts, owners, vectors


# ---------------------------------------------------------------- the gauge


def evaluate_beir(
    beir_dir: Path,
    *,
    embedder,
    work_dir: Path,
    k: int = 10,
    on_progress: ProgressFn | None = None,
    fusion=None,
    reranker=None,
    spelling: bool = False,
) -> dict:
    """nDCG@k, recall@k and MRR@k of the user-facing hybrid retrieval on a BEIR data set
    (`reranker`: a `knowledge.rerank.SentenceReranker` reorders each search's best candidates,
    as the answer path's retriever does; `spelling`: each query's misspelled words are corrected
    to the corpus's words first, as `knowledge.spelling` does for questions)."""
    return evaluate_beir_configs(
        beir_dir, embedder=embedder, work_dir=work_dir, k=k, on_progress=on_progress,
        configs={"hybrid": fusion} if fusion is not None else None, reranker=reranker, spelling=spelling,
    )["hybrid"]


def evaluate_beir_configs(
    beir_dir: Path,
    *,
    embedder,
    work_dir: Path,
    k: int = 10,
    on_progress: ProgressFn | None = None,
    configs: dict | None = None,
    reranker=None,
    spelling: bool = False,
) -> dict[str, dict]:
    """Like `evaluate_beir` for several fusion settings over one index (for tuning/reporting).
    A `reranker` blends each setting's fused score with the best sentence's cosine: its weight was
    chosen for the default fusion's scale (cosine-like), not for RRF's (≈ 0.03)."""
    import shutil
    import tempfile

    from knowledge.edge_store import EdgeChunkStore
    from knowledge.fusion import DEFAULT_FUSION

    configs = configs or {"hybrid": DEFAULT_FUSION}
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    data = load_beir(beir_dir)
    texts, owners, vectors = corpus_embeddings(data, embedder=embedder, work_dir=work_dir, on_progress=on_progress)
    query_ids = sorted(data.queries)
    query_texts = [data.queries[q] for q in query_ids]
    qkey = hashlib.sha256(
        (_model_key(embedder) + "\x1f" + "\x1e".join(query_texts)).encode()
    ).hexdigest()[:20]
    query_vectors = cached_embeddings(query_texts, embedder=embedder, cache_file=work_dir / f"beir-q-{qkey}.npy")

    chunk_counter: dict[str, int] = {}
    chunks = []
    for text, owner in zip(texts, owners):
        index = chunk_counter.get(owner, 0)
        chunk_counter[owner] = index + 1
        chunks.append(
            # The passage text already starts with the title: an empty `title` keeps the indexed
            # text (BM25 over title + headings + text) the passage itself, as the vectors are.
            Chunk(doc_id=owner, title="", source=owner, text=text, chunk_index=index,
                  page=None, heading_path=(), scope=EVAL_SCOPE, content_hash=data.corpus_hash[:16],
                  ingested_at=0.0)
        )
    index_dir = Path(tempfile.mkdtemp(prefix="beir-index-", dir=work_dir))
    results: dict[str, dict] = {}
    store = EdgeChunkStore(index_dir / "edge")
    try:
        started = time.perf_counter()
        batch = 512
        for start in range(0, len(chunks), batch):
            store.add(chunks[start : start + batch], vectors[start : start + batch])
            if on_progress:
                on_progress("index", min(start + batch, len(chunks)), len(chunks))
        store.optimize()  # what the end of an upload does: the searches below run on sealed segments
        log.info("indexed %d passages in %.1fs", len(chunks), time.perf_counter() - started)
        # Enough chunks to fill k distinct documents even when a document has several passages.
        chunk_limit = k * max(1, math.ceil(len(chunks) / max(1, len(data.corpus)))) + k
        corrected = 0
        if spelling:
            from knowledge.spelling import Speller

            speller = Speller(store)
            speller.warm(EVAL_SCOPE)
            query_vectors = np.array(query_vectors, dtype=np.float32)  # a writable copy of the cached ones
            for i, text in enumerate(query_texts):
                fixed = speller.correct(EVAL_SCOPE, text)
                if fixed != text:  # searched, and embedded, as corrected
                    query_texts[i] = fixed
                    query_vectors[i] = np.asarray(embedder.embed_query(fixed), dtype=np.float32)
                    corrected += 1
        for name, config in configs.items():
            store.fusion = config
            ndcg, recall, mrr = [], [], []
            for i, (qid, qtext) in enumerate(zip(query_ids, query_texts)):
                hits = store.search(qtext, query_vectors[i], EVAL_SCOPE, chunk_limit)
                if reranker is not None:
                    hits = reranker.rerank(query_vectors[i], hits)
                ranked: list[str] = []
                for h in hits:  # a document's score is its best chunk's: first occurrence wins
                    if h.chunk.doc_id not in ranked:
                        ranked.append(h.chunk.doc_id)
                rel = data.qrels[qid]
                ndcg.append(ndcg_at_k(ranked, rel, k))
                recall.append(recall_at_k(ranked, rel, k))
                mrr.append(mrr_at_k(ranked, rel, k))
                if on_progress and (i + 1) % 50 == 0:
                    on_progress(f"query:{name}", i + 1, len(query_ids))
            n = max(1, len(query_ids))
            results[name] = {
                f"ndcg@{k}": round(sum(ndcg) / n, 4),
                f"recall@{k}": round(sum(recall) / n, 4),
                f"mrr@{k}": round(sum(mrr) / n, 4),
                "n_queries": len(query_ids),
                "n_docs": len(data.corpus),
                "n_chunks": len(chunks),
                "spelling_corrected": corrected if spelling else None,
            }
    finally:
        store.close()
        shutil.rmtree(index_dir, ignore_errors=True)
    return results
