"""Check eval/handbook_qa.jsonl against a copy of the 18F handbook.

Every line must be a JSON object with a unique id, a question, a gold list and an answerable
flag that agrees with it (answerable ⇔ at least one gold page), and every gold page must exist
under the handbook folder. Exit status 1 on any problem, so this can run in CI.

    python eval/tools/check_handbook_qa.py [--docs ../shared/corpora/18f-handbook]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = HERE.parent / "handbook_qa.jsonl"
DEFAULT_DOCS = Path("/work/shared/corpora/18f-handbook")


def problems(questions: Path, docs: Path) -> list[str]:
    found: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            found.append(f"line {n}: not JSON ({exc})")
            continue
        qid = row.get("id")
        if not isinstance(qid, str) or qid in seen:
            found.append(f"line {n}: missing or duplicate id {qid!r}")
        seen.add(str(qid))
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            found.append(f"{qid}: empty question")
        gold = row.get("gold")
        if not isinstance(gold, list):
            found.append(f"{qid}: gold must be a list")
            continue
        if row.get("answerable") is not bool(gold):
            found.append(f"{qid}: answerable={row.get('answerable')!r} but {len(gold)} gold page(s)")
        for page in gold:
            if not (docs / page).is_file():
                found.append(f"{qid}: gold page not found: {page}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    args = parser.parse_args()
    found = problems(args.questions, args.docs)
    for p in found:
        print(p, file=sys.stderr)
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    answerable = sum(1 for r in rows if r.get("answerable"))
    print(f"{len(rows)} questions ({answerable} answerable, {len(rows) - answerable} not): "
          f"{'OK' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
