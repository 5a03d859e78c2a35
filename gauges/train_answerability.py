"""Train the answerability score: `python -m gauges.train_answerability SET [SET …] [--out FILE]`.

Each SET is `DOCS_DIR:QUESTIONS_FILE[:LINKS_FILE]` — a dev split of docent's QA sets (never a
test split: this is the calibration). The questions are asked through the product's retrieval
exactly as `docent eval qa` asks them, each question's evidence features are computed by
`knowledge.answerability.AnswerabilityFeatures`, and a logistic regression is fit on them.

Printed first: the ablation — each candidate feature set scored out of fold (leave one topic out,
so no topic is scored by a model that saw it): ROC AUC, and the abstention on unanswerable
questions at false abstention ≤ 5 % and ≤ 10 %. The shipped model is the chosen set refit on all
rows; its threshold is the out-of-fold threshold that keeps false abstention ≤ 5 %.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from gauges.qa import EVAL_WORKSPACE, abstention_at_false_abstention, eval_docent, load_links, load_questions, roc_auc

# The ablation, each set adding one idea to the one before.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "best chunk cosine (main today)": ("dense_top",),
    "+ best sentence": ("dense_top", "sent_top"),
    "+ lexical coverage of salient terms": ("dense_top", "sent_top", "lex_cov1", "lex_cov3", "lex_cov_sent2"),
    "+ asked kind of value near the question": ("dense_top", "sent_top", "lex_cov1", "lex_cov3", "lex_cov_sent2", "atype_gap"),
    "+ numbers, length, second sentence, top-3 mean": (
        "dense_top", "sent_top", "lex_cov1", "lex_cov3", "lex_cov_sent2", "atype_gap", "nums_ok", "n_terms",
        "sent_top2", "dense_mean3",
    ),
}
L2 = 10.0
MAX_FALSE_ABSTENTION = 0.05


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 4000, lr: float = 0.5):
    """L2-regularised logistic regression by gradient descent on standardised features."""
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) + l2 * w) / len(y)
        b -= lr * float(np.mean(p - y))
    return w, b


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str], l2: float = L2) -> np.ndarray:
    scores = np.zeros(len(y))
    for g in sorted(set(groups)):
        test = np.array([gg == g for gg in groups])
        train = ~test
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w, b = fit_logistic((x[train] - mu) / sd, y[train], l2)
        scores[test] = 1.0 / (1.0 + np.exp(-(((x[test] - mu) / sd) @ w + b)))
    return scores


def collect(sets: list[str], settings) -> list[dict]:
    """Features of every question of every set, through the product's retrieval."""
    from bot.guards.normalize import normalize_text
    from knowledge.answerability import AnswerabilityFeatures
    from knowledge.types import Scope

    rows = []
    for spec in sets:
        docs, questions, *links = spec.split(":")
        with eval_docent(Path(docs), load_links(Path(links[0]) if links else None), settings=settings) as (docent, _):
            extractor = AnswerabilityFeatures(docent.embedder)
            for q in load_questions(Path(questions)):
                retriever = docent.retriever(Scope(EVAL_WORKSPACE, q.get("channel")))
                text = normalize_text(q["question"])
                hits = retriever.search(text)
                features, _ = extractor.extract(text, hits) if hits else ({k: 0.0 for k in extractor.NAMES}, "")
                rows.append({"set": Path(questions).stem, "id": q["id"], "topic": q.get("topic", ""),
                             "answerable": bool(q["answerable"]), "features": features})
        print(f"{spec}: {sum(1 for r in rows if r['set'] == Path(questions).stem)} questions", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.train_answerability", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="DOCS_DIR:QUESTIONS_FILE[:LINKS_FILE] (dev splits only)")
    parser.add_argument("--out", type=Path, default=None, help="write the weights here (default: print only)")
    parser.add_argument("--features", default="+ numbers, length, second sentence, top-3 mean",
                        help="which candidate set to ship (a key of CANDIDATES)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if any("test" in Path(s.split(":")[1]).stem for s in args.sets):
        parser.error("train on dev splits only; test splits are for reporting")
    from bot.settings import Settings
    from knowledge.embeddings import MINILM

    settings = Settings()
    rows = collect(args.sets, settings)
    y = np.array([r["answerable"] for r in rows], dtype=float)
    groups = [f"{r['set']}:{r['topic']}" for r in rows]
    table = {}
    for name, names in CANDIDATES.items():
        x = np.array([[r["features"][k] for k in names] for r in rows])
        oof = out_of_fold(x, y, groups)
        labels = [bool(v) for v in y]
        at05 = abstention_at_false_abstention(list(oof), labels, 0.05)
        at10 = abstention_at_false_abstention(list(oof), labels, 0.10)
        table[name] = {"auroc": round(roc_auc(list(oof), labels), 4), "abstain_at_fa05": round(at05["abstain"], 4),
                       "abstain_at_fa10": round(at10["abstain"], 4), "threshold_fa05": at05["threshold"]}
    chosen = CANDIDATES[args.features]
    x = np.array([[r["features"][k] for k in chosen] for r in rows])
    mu, sd = x.mean(0), x.std(0) + 1e-9
    w, b = fit_logistic((x - mu) / sd, y)
    weights = {
        "model_name": MINILM,
        "features": list(chosen),
        "mean": [round(float(v), 6) for v in mu],
        "scale": [round(float(v), 6) for v in sd],
        "coef": [round(float(v), 6) for v in w],
        "intercept": round(b, 6),
        "threshold": round(float(table[args.features]["threshold_fa05"]), 4),
        "trained_on": [Path(s.split(":")[1]).name for s in args.sets],
        "n_rows": len(rows),
        "ablation_dev_out_of_fold": table,
    }
    if args.out:
        args.out.write_text(json.dumps(weights, indent=1) + "\n")
    if args.json:
        print(json.dumps({"ablation": table, "weights": weights}, indent=2))
    else:
        print(f"{'feature set':50} {'AUROC':>7} {'abst@FA≤5%':>11} {'abst@FA≤10%':>12}")
        for name, m in table.items():
            print(f"{name:50} {m['auroc']:7.3f} {m['abstain_at_fa05']:11.2f} {m['abstain_at_fa10']:12.2f}")
        print(f"shipped: {args.features!r}, threshold {weights['threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
