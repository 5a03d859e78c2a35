"""Copies of QA files with typos: a stress test of the spelling correction (knowledge/spelling.py).

Each content word of five letters or more (not a stopword) gets, with probability 0.5, one edit
at a random inner position: a deletion, a transposition with the next letter, a substitution by
a neighbouring key, or a doubled letter. Everything else of a row is kept, so a typo'd file is
scored with `docent eval qa` like its source. Deterministic: the random generator is seeded with
`eval/qa/<file name>`. Run from the repository root:

    python eval/tools/make_typos.py OUT_DIR eval/qa/handbook-dev.jsonl …   # writes OUT_DIR/<name>-typo.jsonl

Written by a script, not by people: people's typos cluster on some words and keys, these are
uniform; and half the long words misspelled is far more than a real question has.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from knowledge.text import STOPWORDS  # noqa: E402

_NEIGHBOURS = dict(zip(
    "qwertyuiopasdfghjklzxcvbnm",
    ["wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "o", "qsz", "awdx", "sefc", "drgv", "fthb",
     "gyjn", "hukm", "jil", "kop", "asx", "zdc", "xfv", "cgb", "vhn", "bjm", "nk"],
))


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice("dtsr")
    if op == "d":
        return word[:i] + word[i + 1:]
    if op == "t":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "s" and word[i] in _NEIGHBOURS:
        return word[:i] + rng.choice(_NEIGHBOURS[word[i]]) + word[i + 1:]
    return word[:i] + word[i] + word[i:]  # doubled (also a substitution on a letter with no neighbours listed)


def with_typos(text: str, rng: random.Random) -> str:
    return re.sub(r"[A-Za-z]{5,}", lambda m: typo(m.group(0), rng)
                  if m.group(0).lower() not in STOPWORDS and rng.random() < 0.5 else m.group(0), text)


def main(argv: list[str]) -> int:
    out_dir, sources = Path(argv[0]), argv[1:]
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sources:
        rng = random.Random(f"eval/qa/{Path(src).name}")
        out = out_dir / f"{Path(src).stem}-typo.jsonl"
        with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
            for line in f:
                row = json.loads(line)
                row["question"] = with_typos(row["question"], rng)
                w.write(json.dumps(row) + "\n")
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
