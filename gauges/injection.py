"""Measure the injection defenses.

* `evaluate_injection_file` — direct injection: JSONL files of `{"text", "label"}` rows
  (label 1 = injection, 0 = benign), scored as one set. A row counts as *detected* when the
  detector's level is at least `BLOCKING_LEVEL` (medium): the level from which the pipeline
  blocks or warns. Question files without labels (the QA sets' `question` field) are read with
  `text_fields=("text", "question")` and `label=0`: a row without a label is an honest question.
* `evaluate_document_scan` — indirect injection: each attack instruction is hidden at a random
  paragraph boundary of a random Markdown page, and the ingest scan must flag the page; every
  clean page is scanned too, for the false-positive rate.

Command line (the lead's `docent eval injection` calls the same functions):

    python -m gauges.injection FILE.jsonl [FILE.jsonl …] [--text-field NAME …] [--label 0|1] [--details] [--json] [--heuristic-only]
    python -m gauges.injection --documents HANDBOOK_DIR --attacks ATTACKS.jsonl [--scan-mode ingest|text] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from bot.guards.injection import (
    BLOCKING_LEVEL,
    DocumentScanner,
    InjectionDetector,
    default_detector,
    detect_many,
    is_flagged,
)


def read_labelled_rows(path: Path, text_fields: Sequence[str] = ("text",), label: int | None = None) -> list[tuple[str, int]]:
    """(text, label) rows: the text from the first of `text_fields` a row has; `label`, when
    given, is the label of rows that have none (question files: every row honest)."""
    expected = " or ".join(repr(f) for f in text_fields) + ("" if label is not None else " and 'label'")
    rows: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                field = next((f for f in text_fields if f in row), None) if isinstance(row, dict) else None
                if field is None or ("label" not in row and label is None):
                    raise ValueError(f"{path}:{n}: expected a JSON object with {expected}")
                rows.append((str(row[field]), int(row["label"]) if "label" in row else label))
            except (ValueError, TypeError) as exc:
                raise ValueError(str(exc) if str(exc).startswith(f"{path}:") else f"{path}:{n}: {exc}") from exc
    return rows


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def evaluate_injection_file(
    paths: Path | Sequence[Path],
    detector: InjectionDetector,
    *,
    text_fields: Sequence[str] = ("text",),
    label: int | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """Detection and false-positive rates over the rows of all `paths` together, and per file.

    `details` adds the benign rows that were flagged and the injections that were missed, with
    the detector's reasons: what to read when tuning on a dev set (never on a test set).
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    per_file = [(p, read_labelled_rows(p, text_fields, label)) for p in paths]
    rows = [row for _, file_rows in per_file for row in file_rows]
    verdicts = detect_many(detector, [text for text, _ in rows])
    detected = [v.level >= BLOCKING_LEVEL for v in verdicts]
    n_injection = sum(1 for _, lab in rows if lab == 1)
    n_benign = len(rows) - n_injection
    true_pos = sum(1 for (_, lab), d in zip(rows, detected) if lab == 1 and d)
    false_pos = sum(1 for (_, lab), d in zip(rows, detected) if lab != 1 and d)
    result: dict[str, Any] = {
        "detection_rate": _rate(true_pos, n_injection),
        "false_positive_rate": _rate(false_pos, n_benign),
        "n_injection": n_injection,
        "n_benign": n_benign,
        "detected": true_pos,
        "false_positives": false_pos,
        "blocking_level": BLOCKING_LEVEL.name,
        "files": [],
    }
    start = 0
    for path, file_rows in per_file:
        flags = detected[start : start + len(file_rows)]
        result["files"].append({
            "file": str(path),
            "rows": len(file_rows),
            "detected": sum(1 for (_, lab), d in zip(file_rows, flags) if lab == 1 and d),
            "false_positives": sum(1 for (_, lab), d in zip(file_rows, flags) if lab != 1 and d),
        })
        start += len(file_rows)
    if details:
        def described(text: str, verdict) -> dict[str, Any]:
            return {"text": text, "level": verdict.level.name, "score": verdict.score, "reasons": list(verdict.reasons)}

        result["flagged_benign"] = [described(t, v) for (t, lab), v, d in zip(rows, verdicts, detected) if lab != 1 and d]
        result["missed_injections"] = [described(t, v) for (t, lab), v, d in zip(rows, verdicts, detected) if lab == 1 and not d]
    return result


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def hide_in_page(page: str, attack: str, rng: random.Random) -> str:
    """Insert `attack` as its own paragraph at a random paragraph boundary of `page`."""
    paragraphs = _PARAGRAPH_BREAK.split(page)
    at = rng.randint(0, len(paragraphs))
    return "\n\n".join(paragraphs[:at] + [attack] + paragraphs[at:])


def read_attacks(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _IngestScan:
    """The document scan as `docent ingest` runs it: the page loaded and chunked as ingest does,
    the chunks embedded (cached by text: an attacked copy re-embeds only the chunks that
    changed), then `DocumentScanner.scan(document text, chunks)`."""

    def __init__(self, scanner: DocumentScanner, embedder) -> None:
        self.scanner, self.embedder = scanner, embedder
        self._vectors: dict[str, Any] = {}

    def __call__(self, name: str, page: str):
        import numpy as np

        from knowledge.chunk_records import embedding_text
        from knowledge.chunking import chunk_document
        from knowledge.loaders import load_document
        from knowledge.types import EmbeddedChunks, Scope, document_id

        from knowledge.types import DocumentError

        try:
            doc = load_document(name, page.encode("utf-8"), max_bytes=1 << 30)
        except DocumentError:  # ingest refuses it before any scan (e.g. front matter only)
            return self.scanner.scan(page)
        text = "\n\n".join(section.text for section in doc.sections)  # = what admin uploads scan
        if self.embedder is None:
            return self.scanner.scan(text)
        scope = Scope("gauge", "*")
        texts = [embedding_text(c) for c in chunk_document(doc, scope, doc_id=document_id(scope, name), ingested_at=0.0)]
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.embedder.embed_array(missing)))
        vectors = np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.embedder.dim), np.float32)
        return self.scanner.scan(text, EmbeddedChunks(tuple(texts), vectors, self.embedder.vector_space))


def evaluate_document_scan(
    handbook_dir: Path,
    attacks_path: Path,
    detector: InjectionDetector | None = None,
    seed: int = 0,
    embedder=None,
    split: str | None = None,
    mode: str = "ingest",
) -> dict[str, Any]:
    """Flag rates on attacked pages (one attack per page) and on every clean page.

    `split` keeps only attack rows with that `split` field ("train"/"test"); None = all.
    `mode` "ingest": each page goes the way `docent ingest` scans it (loaded, chunked, chunk
    vectors handed to the scan); "text": the raw page text is scanned alone (every sentence
    embedded by the scan itself).
    """
    paths = sorted(Path(handbook_dir).rglob("*.md"))
    pages = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    if not pages:
        raise ValueError(f"no Markdown pages under {handbook_dir}")
    names = [p.name for p in paths]
    attacks = [a for a in read_attacks(Path(attacks_path)) if split is None or a.get("split") == split]
    scanner = DocumentScanner(detector, embedder)
    if mode == "ingest":
        scan = _IngestScan(scanner, scanner.embedder)
    elif mode == "text":
        def scan(name: str, page: str):
            return scanner.scan(page)
    else:
        raise ValueError(f"unknown scan mode {mode!r}: ingest or text")
    # Clean pages first: their passages' embeddings are cached, so each attacked copy only
    # embeds the inserted paragraph.
    flagged_clean = 0
    clean_flags: list[str] = []
    for name, page in zip(names, pages):
        findings = scan(name, page)
        if is_flagged(findings):
            flagged_clean += 1
            clean_flags.extend(f.passage for f in findings if f.verdict.level >= BLOCKING_LEVEL)
    rng = random.Random(seed)
    missed: list[str] = []
    flagged_attacked = 0
    for attack in attacks:
        instruction = attack["instruction"]
        at = rng.randrange(len(pages))  # = rng.choice(pages): the same pages for every seed as before
        if is_flagged(scan(names[at], hide_in_page(pages[at], instruction, rng))):
            flagged_attacked += 1
        else:
            missed.append(instruction)
    return {
        "mode": mode,
        "flag_rate_attacked": _rate(flagged_attacked, len(attacks)),
        "flag_rate_clean": _rate(flagged_clean, len(pages)),
        "n_attacked": len(attacks),
        "n_flagged_attacked": flagged_attacked,
        "n_clean": len(pages),
        "n_flagged_clean": flagged_clean,
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
    parser.add_argument("files", nargs="*", type=Path, help="JSONL with text,label (several files are scored as one set)")
    parser.add_argument("--text-field", action="append", dest="text_fields", metavar="NAME",
                        help="field holding the text; repeatable, the first a row has wins (default: text)")
    parser.add_argument("--label", type=int, choices=(0, 1), help="label of rows that have none (0: honest questions)")
    parser.add_argument("--details", action="store_true", help="list flagged benign rows and missed injections")
    parser.add_argument("--documents", type=Path, help="folder of Markdown pages for the ingest-scan evaluation")
    parser.add_argument("--attacks", type=Path, help="BIPIA-style JSONL with an 'instruction' field")
    parser.add_argument("--split", default=None, help="only attack rows of this split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scan-mode", choices=("ingest", "text"), default="ingest",
                        help="ingest: pages loaded, chunked and scanned with their chunk vectors as `docent ingest` "
                             "does (default); text: the raw page text scanned alone")
    parser.add_argument("--heuristic-only", action="store_true", help="skip the embedding layer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.files and not (args.documents and args.attacks):
        parser.error("give FILE.jsonl, or --documents DIR --attacks FILE.jsonl")

    embedder = _load_embedder(args.heuristic_only)
    if args.files:
        result = evaluate_injection_file(
            args.files, default_detector(embedder), text_fields=args.text_fields or ("text",),
            label=args.label, details=args.details,
        )
    else:
        # Documents use the document heuristics (DocumentScanner's default) + the off-topic layer.
        result = evaluate_document_scan(args.documents, args.attacks, None, seed=args.seed, embedder=embedder,
                                        split=args.split, mode=args.scan_mode)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if isinstance(value, float):
                print(f"{key:>22}: {value:.1%}")
            elif isinstance(value, list):
                print(f"{key:>22}: {len(value)}")
                for item in value[:40]:
                    if isinstance(item, dict):
                        item = ", ".join(f"{k}={v}" for k, v in item.items())
                    print(f"{'':>24}- {item[:140]}")
            else:
                print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
