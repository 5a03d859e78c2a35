"""What a question costs on the real ask path, with the sentence rerank and without:
`python -m gauges.ask_latency --docs DIR --questions FILE [--links FILE] [--limit N] [--json]`.

`docent eval qa` times each `Docent.ask` after searching the same question twice (its ranks and
its gate score), so its latencies find every vector cached. This gauge times the first ask of a
question: before each one the process's query and sentence vector caches are emptied (the answer
cache is off, as in `docent eval qa`), and the two settings alternate question by question (on,
off, then off, on), so both see the same machine load. Offline answerer unless a key is set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

WARM_UP = 3  # asks before timing: the model session and the store's first reads


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cold_ask_latency(docent, questions: Sequence[dict], rerankers: dict) -> dict[str, list[float]]:
    """Milliseconds per first ask of each question under each named reranker (None: off)."""
    from bot.types import Question
    from gauges.qa import EVAL_WORKSPACE
    from knowledge.query_vectors import QUERY_VECTORS, SENTENCE_VECTORS

    def ask(row: dict) -> None:
        docent.ask(Question(platform="eval", workspace=EVAL_WORKSPACE, channel=row.get("channel"), user="eval",
                            text=row["question"]))

    for row in questions[:WARM_UP]:
        ask(row)
    names = list(rerankers)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i, row in enumerate(questions):
        for name in names if i % 2 == 0 else reversed(names):
            docent.reranker = rerankers[name]
            QUERY_VECTORS.clear()
            SENTENCE_VECTORS.clear()
            started = time.perf_counter()
            ask(row)
            out[name].append((time.perf_counter() - started) * 1000)
    return out


def summary(latencies: dict[str, list[float]]) -> dict:
    result: dict = {"questions": len(next(iter(latencies.values()), []))}
    for name, values in latencies.items():
        result[f"{name}_p50_ms"] = round(statistics.median(values), 1) if values else None
        result[f"{name}_p95_ms"] = round(percentile(values, 0.95), 1) if values else None
    if latencies.get("rerank") and latencies.get("plain"):
        result["rerank_over_plain_p50"] = round(statistics.median(latencies["rerank"]) / statistics.median(latencies["plain"]), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.ask_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--links", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=60, help="questions timed (the file's first ones)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from bot.settings import Settings
    from gauges.qa import eval_docent, load_links, load_questions
    from knowledge.rerank import SentenceReranker

    settings = Settings()
    questions = load_questions(args.questions)[: args.limit]
    with eval_docent(args.docs, load_links(args.links) if args.links else {}, settings=settings) as (docent, _):
        rerankers = {
            "rerank": SentenceReranker(docent.embedder, depth=settings.rerank_depth, weight=settings.rerank_weight),
            "plain": None,
        }
        result = summary(cold_ask_latency(docent, questions, rerankers))
    result["rerank"] = {"depth": rerankers["rerank"].depth, "weight": rerankers["rerank"].weight}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
