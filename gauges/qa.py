"""`docent eval qa`: questions asked through the real answer path over a folder of documents.

Reports recall@1/3/5 of the gold documents among the retrieved sources, the abstention rate on
unanswerable questions, the false-abstention rate on answerable ones, and latency percentiles.
The folder is ingested into its own data directory; ingest is idempotent, so a second run only
re-reads files (nothing is re-embedded unless it changed).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Callable

from bot.settings import Settings
from bot.types import Outcome, Question
from knowledge.types import Scope

EVAL_WORKSPACE = "eval"


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_questions(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        missing = {"id", "question", "gold", "answerable"} - set(r)
        if missing:
            raise ValueError(f"{path}: question {r.get('id', '?')} lacks {sorted(missing)}")
    return rows


def evaluate_qa(
    docs_dir: Path,
    questions_path: Path,
    *,
    settings: Settings,
    on_progress: Callable[[int, int, str], None] | None = None,
    chat_model=None,
) -> dict:
    from admin.types import Actor
    from bot.core import Docent
    from knowledge.loaders import SUPPORTED_EXTENSIONS

    docs_dir = docs_dir.resolve()
    questions = load_questions(questions_path)
    key = hashlib.sha1(str(docs_dir).encode()).hexdigest()[:10]
    eval_settings = settings.model_copy(
        update={
            "data_dir": settings.data_dir / "eval-qa" / key,
            # The gauge measures answering, not the guards: no limits or caps, no shared cache.
            "rate_limit_user": "1000000/minute",
            "rate_limit_channel": "1000000/minute",
            "rate_limit_workspace": "1000000/minute",
            "user_daily_cap_usd": 1e9,
            "workspace_daily_cap_usd": 1e9,
            "redis_url": None,
            "database_url": None,
            "cache_ttl_s": 0,
        }
    )
    eval_settings.data_dir.mkdir(parents=True, exist_ok=True)
    docent = Docent.from_settings(eval_settings, chat_model=chat_model)
    scope = Scope.workspace_wide(EVAL_WORKSPACE)
    actor = Actor("cli", EVAL_WORKSPACE, "eval", is_platform_admin=True)
    try:
        files = sorted(f for f in docs_dir.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_EXTENSIONS)
        ingest_errors = []
        for i, f in enumerate(files):
            if on_progress:
                on_progress(i, len(files), "ingesting")
            try:
                docent.admin.upload(actor, f.relative_to(docs_dir).as_posix(), f.read_bytes(), scope)
            except Exception as e:  # a bad file is reported, not fatal to the gauge
                ingest_errors.append(f"{f.name}: {e}")

        retriever = docent.retriever(scope)
        recall = {1: [], 3: [], 5: []}
        answerable_abstained: list[bool] = []
        unanswerable_abstained: list[bool] = []
        latencies: list[float] = []
        best_dense: list[tuple[float, bool]] = []
        per_question = []
        for i, row in enumerate(questions):
            if on_progress:
                on_progress(i, len(questions), "asking")
            hits = retriever.search(row["question"], k=20)
            ranked_docs: list[str] = []
            for h in hits:
                if h.chunk.source not in ranked_docs:
                    ranked_docs.append(h.chunk.source)
            top = max((h.dense_score or 0.0 for h in hits), default=0.0)
            best_dense.append((top, bool(row["answerable"])))

            t0 = time.perf_counter()
            answer = docent.ask(
                Question(platform="eval", workspace=EVAL_WORKSPACE, channel=None, user="eval", text=row["question"])
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            abstained = answer.outcome == Outcome.abstained
            gold = set(row["gold"])
            if row["answerable"]:
                answerable_abstained.append(abstained)
                for k in recall:
                    recall[k].append(len(gold & set(ranked_docs[:k])) / len(gold) if gold else 0.0)
            else:
                unanswerable_abstained.append(abstained)
            per_question.append(
                {
                    "id": row["id"],
                    "answerable": row["answerable"],
                    "outcome": str(answer.outcome),
                    "top_docs": ranked_docs[:5],
                    "gold": sorted(gold),
                    "best_dense": round(top, 4),
                    "cited": [s.source for s in answer.sources],
                }
            )
        if on_progress:
            on_progress(len(questions), len(questions), "done")
    finally:
        docent.close()

    def mean(xs: list) -> float:
        return float(statistics.fmean(xs)) if xs else 0.0

    return {
        "n_questions": len(questions),
        "n_answerable": len(answerable_abstained),
        "n_unanswerable": len(unanswerable_abstained),
        "n_documents": len(files),
        "ingest_errors": ingest_errors,
        "model": docent.engine.model_name,
        "relevance_threshold": eval_settings.relevance_threshold,
        "recall@1": mean(recall[1]),
        "recall@3": mean(recall[3]),
        "recall@5": mean(recall[5]),
        "abstain_rate_unanswerable": mean(unanswerable_abstained),
        "false_abstain_rate": mean(answerable_abstained),
        "latency_p50_ms": _percentile(latencies, 0.50),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "questions": per_question,
    }
