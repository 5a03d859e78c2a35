"""`docent ingest FOLDER` against the LangChain tutorial pipeline on the same folder, back to back.

    python -m gauges.ingest_peer FOLDER [--rounds 3] [--also OTHER_CHECKOUT …] [--json]

Each round runs every contestant once, in turn, each as a new process into a fresh folder:
docent (this checkout's code), the tutorial pipeline (`eval/tools/langchain_tutorial_ingest.py`:
RecursiveCharacterTextSplitter 1000/200 → the same MiniLM through sentence-transformers → local
on-disk Qdrant; needs the `bench` extra), and the docent of any `--also` checkout (e.g. main's,
to compare before and after a change in the same CPU weather). The order rotates every round so
none always runs first. Reported per contestant: median whole-process wall seconds and peak RSS
(the child's own `ru_maxrss`, see `gauges.bench.measure_command`), and docent's medians over the
peer's. Before the rounds, each contestant runs once, uncounted, on a one-file folder (warm page cache). The machine is shared: compare within one run, never across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from gauges.bench import CHECKOUT, _SUMMARY, docent_ingest_command, measure_command

PEER_SCRIPT = CHECKOUT / "eval" / "tools" / "langchain_tutorial_ingest.py"


def _contestants(folder: Path, also: list[Path]) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    out = {"docent": docent_ingest_command(folder)}
    out["langchain_tutorial"] = (
        [sys.executable, str(PEER_SCRIPT), str(folder.resolve())],
        {**os.environ, "HF_HUB_OFFLINE": "1"},
        CHECKOUT,
    )
    for checkout in also:
        out[f"docent@{checkout}"] = docent_ingest_command(folder, checkout.resolve())
    return out


def run_rounds(folder: Path, *, rounds: int = 3, also: list[Path] = (), work_dir: Path | None = None,
               warmup: bool = True, on_result=None) -> dict:
    contestants = _contestants(Path(folder), list(also))
    names = list(contestants)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    base = Path(tempfile.mkdtemp(prefix="ingest-peer-", dir=work_dir))
    try:
        if warmup:
            # Each contestant once on a one-file folder, not counted: every run then starts with
            # its code and the model in the page cache (a user's second run, not the first after install).
            tiny = base / "warmup-docs"
            tiny.mkdir()
            first = next(p for p in sorted(Path(folder).rglob("*.md")) if p.stat().st_size > 200)
            (tiny / first.name).write_bytes(first.read_bytes())
            for name, (argv, env, cwd) in _contestants(tiny, list(also)).items():
                target = base / f"warmup-{name.replace('/', '_')}"
                env = dict(env)
                if name == "langchain_tutorial":
                    argv = [*argv, "--qdrant-path", str(target)]
                else:
                    env["DOCENT_DATA_DIR"] = str(target)
                measure_command(argv, env=env, cwd=cwd, log_path=base / f"warmup-{name.replace('/', '_')}.log")
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                argv, env, cwd = contestants[name]
                target = base / f"{r}-{name.replace('/', '_')}"
                env = dict(env)
                if name == "langchain_tutorial":
                    argv = [*argv, "--qdrant-path", str(target)]
                else:
                    env["DOCENT_DATA_DIR"] = str(target)
                wall, rss_mb, stdout = measure_command(argv, env=env, cwd=cwd, log_path=base / f"{r}-{name.replace('/', '_')}.log")
                shutil.rmtree(target, ignore_errors=True)
                row = {"round": r, "wall_s": round(wall, 2), "peak_rss_mb": round(rss_mb, 1), **_counts(name, stdout)}
                runs[name].append(row)
                if on_result:
                    on_result(name, row)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    summary = {
        name: {
            "median_wall_s": round(statistics.median(x["wall_s"] for x in rows), 2),
            "median_peak_rss_mb": round(statistics.median(x["peak_rss_mb"] for x in rows), 1),
            "runs": rows,
        }
        for name, rows in runs.items()
    }
    peer = summary["langchain_tutorial"]
    result = {
        "folder": str(folder),
        "rounds": rounds,
        "cores": os.cpu_count(),
        "contestants": summary,
        "docent_over_peer_wall": round(summary["docent"]["median_wall_s"] / peer["median_wall_s"], 3),
        "docent_over_peer_rss": round(summary["docent"]["median_peak_rss_mb"] / peer["median_peak_rss_mb"], 3),
        # Per round too: the two ran minutes apart at most, so each ratio saw similar load.
        "docent_over_peer_wall_per_round": [
            round(d["wall_s"] / p["wall_s"], 3) for d, p in zip(summary["docent"]["runs"], peer["runs"])
        ],
    }
    return result


def _counts(name: str, stdout: str) -> dict:
    if name == "langchain_tutorial":
        try:
            line = json.loads(stdout.strip().splitlines()[-1])
            return {"documents": line["files"], "chunks": line["chunks"]}
        except (ValueError, IndexError, KeyError):
            return {}
    summary = _SUMMARY.search(" ".join(stdout.split()))
    return {"documents": int(summary.group(1)), "chunks": int(summary.group(3))} if summary else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.ingest_peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--also", type=Path, action="append", default=[], metavar="CHECKOUT",
                        help="another source checkout whose `docent ingest` runs in the same rounds")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the fresh data folders go (default: /tmp)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the uncounted one-file run of each contestant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    def progress(name: str, row: dict) -> None:
        print(f"round {row['round']}: {name}: {row['wall_s']} s, {row['peak_rss_mb']} MB, "
              f"{row.get('chunks')} chunks", file=sys.stderr, flush=True)

    result = run_rounds(args.folder, rounds=args.rounds, also=args.also, work_dir=args.work_dir,
                        warmup=not args.no_warmup, on_result=progress)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, s in result["contestants"].items():
            print(f"{name:>40}: median {s['median_wall_s']} s, {s['median_peak_rss_mb']} MB peak RSS")
        print(f"{'docent / peer':>40}: wall {result['docent_over_peer_wall']}, RSS {result['docent_over_peer_rss']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
