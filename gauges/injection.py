"""Measure the injection defenses.

* `evaluate_injection_file` — direct injection: a JSONL file of `{"text", "label"}` rows
  (label 1 = injection, 0 = benign). A row counts as *detected* when the detector's level is
  at least `BLOCKING_LEVEL` (medium): the level from which the pipeline blocks or warns.
* `evaluate_document_scan` — indirect injection: each attack instruction is hidden at a random
  paragraph boundary of a random Markdown page, and the ingest scan must flag the page; every
  clean page is scanned too, for the false-positive rate.

Command line (the lead's `docent eval injection` calls the same functions):

    python -m gauges.injection FILE.jsonl [--json] [--heuristic-only]
    python -m gauges.injection --documents HANDBOOK_DIR --attacks ATTACKS.jsonl [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from bot.guards.injection import (
    BLOCKING_LEVEL,
    DocumentScanner,
    InjectionDetector,
    default_detector,
    detect_many,
    is_flagged,
)


def read_labelled_rows(path: Path) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((str(row["text"]), int(row["label"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: expected a JSON object with 'text' and 'label' ({exc})") from exc
    return rows


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def evaluate_injection_file(path: Path, detector: InjectionDetector) -> dict[str, Any]:
    rows = read_labelled_rows(Path(path))
    verdicts = detect_many(detector, [text for text, _ in rows])
    detected = [v.level >= BLOCKING_LEVEL for v in verdicts]
    n_injection = sum(1 for _, label in rows if label == 1)
    n_benign = len(rows) - n_injection
    true_pos = sum(1 for (_, label), d in zip(rows, detected) if label == 1 and d)
    false_pos = sum(1 for (_, label), d in zip(rows, detected) if label != 1 and d)
    return {
        "detection_rate": _rate(true_pos, n_injection),
        "false_positive_rate": _rate(false_pos, n_benign),
        "n_injection": n_injection,
        "n_benign": n_benign,
        "detected": true_pos,
        "false_positives": false_pos,
        "blocking_level": BLOCKING_LEVEL.name,
    }


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def hide_in_page(page: str, attack: str, rng: random.Random) -> str:
    """Insert `attack` as its own paragraph at a random paragraph boundary of `page`."""
    paragraphs = _PARAGRAPH_BREAK.split(page)
    at = rng.randint(0, len(paragraphs))
    return "\n\n".join(paragraphs[:at] + [attack] + paragraphs[at:])


def read_attacks(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate_document_scan(
    handbook_dir: Path,
    attacks_path: Path,
    detector: InjectionDetector | None = None,
    seed: int = 0,
    embedder=None,
    split: str | None = None,
) -> dict[str, Any]:
    """Flag rates on attacked pages (one attack per page) and on every clean page.

    `split` keeps only attack rows with that `split` field ("train"/"test"); None = all.
    """
    pages = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(Path(handbook_dir).rglob("*.md"))]
    if not pages:
        raise ValueError(f"no Markdown pages under {handbook_dir}")
    attacks = [a for a in read_attacks(Path(attacks_path)) if split is None or a.get("split") == split]
    scanner = DocumentScanner(detector, embedder)
    # Clean pages first: their passages' embeddings are cached, so each attacked copy only
    # embeds the inserted paragraph.
    flagged_clean = 0
    clean_flags: list[str] = []
    for page in pages:
        findings = scanner.scan(page)
        if is_flagged(findings):
            flagged_clean += 1
            clean_flags.extend(f.passage for f in findings if f.verdict.level >= BLOCKING_LEVEL)
    rng = random.Random(seed)
    missed: list[str] = []
    flagged_attacked = 0
    for attack in attacks:
        instruction = attack["instruction"]
        page = rng.choice(pages)
        if is_flagged(scanner.scan(hide_in_page(page, instruction, rng))):
            flagged_attacked += 1
        else:
            missed.append(instruction)
    return {
        "flag_rate_attacked": _rate(flagged_attacked, len(attacks)),
        "flag_rate_clean": _rate(flagged_clean, len(pages)),
        "n_attacked": len(attacks),
        "n_clean": len(pages),
        "missed_attacks": missed,
        "clean_passages_flagged": clean_flags,
    }


def _load_embedder(heuristic_only: bool):
    if heuristic_only:
        return None
    try:
        from bot.settings import Settings
        from knowledge.embeddings import make_embedder

        settings = Settings()  # the backend users run (DOCENT_EMBEDDING_BACKEND)
        return make_embedder(
            "minilm", settings.embedding_model_path, backend=settings.embedding_backend,
            cache_dir=settings.embedding_cache_dir,
        )
    except (ImportError, FileNotFoundError) as exc:  # no model installed: heuristics still work
        print(f"embedding layer unavailable ({exc}); heuristics only", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.injection", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="JSONL with text,label")
    parser.add_argument("--documents", type=Path, help="folder of Markdown pages for the ingest-scan evaluation")
    parser.add_argument("--attacks", type=Path, help="BIPIA-style JSONL with an 'instruction' field")
    parser.add_argument("--split", default=None, help="only attack rows of this split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heuristic-only", action="store_true", help="skip the embedding layer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.file and not (args.documents and args.attacks):
        parser.error("give FILE.jsonl, or --documents DIR --attacks FILE.jsonl")

    embedder = _load_embedder(args.heuristic_only)
    if args.file:
        result = evaluate_injection_file(args.file, default_detector(embedder))
    else:
        # Documents use the document heuristics (DocumentScanner's default) + the off-topic layer.
        result = evaluate_document_scan(args.documents, args.attacks, None, seed=args.seed, embedder=embedder, split=args.split)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if isinstance(value, float):
                print(f"{key:>22}: {value:.1%}")
            elif isinstance(value, list):
                print(f"{key:>22}: {len(value)}")
                for item in value[:40]:
                    print(f"{'':>24}- {item[:140]}")
            else:
                print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
