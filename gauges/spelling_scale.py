"""`python -m gauges.spelling_scale (--docs DIR | --synthetic N) [--channels N]`: what the spelling
correction's vocabularies cost when many channels of one workspace ask, and how long a large
workspace's first read takes.

`--docs`: the folder is ingested workspace-wide (as `docent eval qa` does, cached per data dir);
then a fresh `Speller` over that store gets one misspelled question from each of N channels, none
with documents of its own, one after the other. Printed: each channel's first question's time
(p50, max), the total, and how much the process's resident memory grew (the vocabularies it keeps).

`--synthetic N`: N workspace-wide chunks of generated text over a 60k-word vocabulary (`docent
bench`'s synthetic store: random vectors, nothing is embedded) in a fresh Edge store; printed: how long the first read of their
words takes (`Speller.warm`), and how long a first question waits with the default `first_wait_s`.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def measure(store, workspace: str, channels: int, question: str = "how ofetn do i rotaet my passwrd") -> dict:
    from knowledge.spelling import Speller, english_words
    from knowledge.types import Scope

    english_words()  # the English list is loaded once per process, whatever the channels
    speller = Speller(store)
    gc.collect()
    before = _rss_mb()
    times = []
    for i in range(channels):
        started = time.perf_counter()
        speller.correct(Scope(workspace, f"C-scale-{i}"), question)
        times.append((time.perf_counter() - started) * 1000)
    gc.collect()
    return {
        "channels": channels,
        "first_question_p50_ms": round(statistics.median(times), 1),
        "first_question_max_ms": round(max(times), 1),
        "total_s": round(sum(times) / 1000, 2),
        "rss_growth_mb": round(_rss_mb() - before, 1),
    }


def synthetic(chunks: int, work_dir: Path) -> dict:
    from gauges.bench import build_synthetic_store
    from knowledge.spelling import Speller, english_words
    from knowledge.types import WORKSPACE_WIDE, Scope

    store, _ = build_synthetic_store(chunks, work_dir / "edge", seed=5, words=60_000,
                                     scope=Scope.workspace_wide("W"))
    try:
        english_words()
        speller = Speller(store)
        started = time.perf_counter()
        speller.warm(Scope("W", None))
        read_s = time.perf_counter() - started
        words = len(speller._get(("W", WORKSPACE_WIDE)).words)
        asked = Speller(store)
        started = time.perf_counter()
        asked.correct(Scope("W", "C1"), "how ofetn do i rotaet my passwrd")
        waited = time.perf_counter() - started
        asked.settle()  # its read goes on after the question: let it end before the store closes
        return {"chunks": chunks, "distinct_words": words, "first_read_s": round(read_s, 2),
                "first_question_s": round(waited, 2)}
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.spelling_scale", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--docs", type=Path, help="folder ingested workspace-wide")
    source.add_argument("--synthetic", type=int, metavar="N", help="N generated workspace-wide chunks")
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args(argv)
    if args.synthetic:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="spelling-scale-") as work:
            print(json.dumps(synthetic(args.synthetic, Path(work))))
        return 0
    from bot.settings import Settings
    from gauges.qa import EVAL_WORKSPACE, eval_docent

    with eval_docent(args.docs, {}, settings=Settings()) as (docent, _):
        result = measure(docent.knowledge.store, EVAL_WORKSPACE, args.channels)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
