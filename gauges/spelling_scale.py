"""`python -m gauges.spelling_scale --docs DIR [--channels N]`: what the spelling correction's
vocabularies cost when many channels of one workspace ask.

The folder is ingested workspace-wide (as `docent eval qa` does, cached per data dir); then a fresh
`Speller` over that store gets one misspelled question from each of N channels, none with
documents of its own, one after the other. Printed: each channel's first question's time (p50,
max), the total, and how much the process's resident memory grew (the vocabularies it keeps).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.spelling_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, required=True, help="folder ingested workspace-wide")
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args(argv)
    from bot.settings import Settings
    from gauges.qa import EVAL_WORKSPACE, eval_docent

    with eval_docent(args.docs, {}, settings=Settings()) as (docent, _):
        result = measure(docent.knowledge.store, EVAL_WORKSPACE, args.channels)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
