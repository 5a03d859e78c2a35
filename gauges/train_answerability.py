"""Train the answerability score: `python -m gauges.train_answerability SET [SET …] [--out FILE]`.

Each SET is `DOCS_DIR:QUESTIONS_FILE[:LINKS_FILE]` — a dev split of docent's QA sets (never a
test split: this is the calibration). The questions are asked through the product's retrieval
exactly as `docent eval qa` asks them, each question's evidence features are computed by
`knowledge.answerability.AnswerabilityFeatures`, and a logistic regression is fit on them.

Near misses are also made from the documents: every answerable question is asked again with its
gold documents taken out of the results (the hits retrieval ranks next), which is what the
question looks like to a corpus that covers its topic but not its fact. Those rows are only fit
on, never scored: the figures below are on the questions people wrote.

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
_KIND = ("dense_top", "sent_top", "lex_cov1", "lex_cov3", "lex_cov_sent2", "atype_gap")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "best chunk cosine": ("dense_top",),
    "+ best sentence": ("dense_top", "sent_top"),
    "+ lexical coverage of salient terms": ("dense_top", "sent_top", "lex_cov1", "lex_cov3", "lex_cov_sent2"),
    "+ asked kind of value near the question": _KIND,
    "+ BM25 peak (top score over the rest)": _KIND + ("bm25_peak",),
    "+ best single sentence's coverage": _KIND + ("bm25_peak", "sent_cov_best"),
    "+ BM25 top score (scale depends on the corpus)": _KIND + ("bm25_peak", "sent_cov_best", "bm25_top"),
    "+ top-5 coverage, missing words": _KIND + ("bm25_peak", "sent_cov_best", "lex_cov5", "missing_terms"),
    "+ numbers, length, second sentence, top-3 mean": _KIND + (
        "bm25_peak", "sent_cov_best", "nums_ok", "n_terms", "sent_top2", "dense_mean3",
    ),
}
CANDIDATES["+ another channel's documents come closer"] = CANDIDATES["+ best single sentence's coverage"] + ("elsewhere_gap",)
SHIPPED = "+ another channel's documents come closer"
L2 = 10.0
MAX_FALSE_ABSTENTION = 0.05


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 4000, lr: float = 0.5):
    """L2-regularised logistic regression by gradient descent on standardised features.

    The step is at most 1/L, L the gradient's Lipschitz bound ((‖[x 1]‖₂²/4 + l2) / rows): with
    few rows the penalty's own curvature (l2 / rows) exceeds 2/lr, and a fixed step diverges to NaN
    weights (seen on 2–4 rows). Big sets keep `lr`: the shipped set's bound allows more."""
    w = np.zeros(x.shape[1])
    b = 0.0
    ones = np.hstack([x, np.ones((len(x), 1))])
    bound = (np.linalg.norm(ones, 2) ** 2 / 4 + l2) / max(len(y), 1)
    lr = min(lr, 1.0 / bound) if bound > 0 else lr
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) + l2 * w) / len(y)
        b -= lr * float(np.mean(p - y))
    return w, b


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale per feature; a feature constant in the rows fit on keeps scale 1 (else a
    different value in a scored row would be blown up by a scale of ~0)."""
    sd = x.std(0)
    return x.mean(0), np.where(sd < 1e-6, 1.0, sd)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def prior_shift(y: np.ndarray, written: np.ndarray) -> float:
    """What to add to the intercept of a model fit on `y` (written and made rows) so that its
    probabilities are calibrated for the written questions' share of answerable ones: the made
    rows are all unanswerable and would otherwise pull every score down (a prior correction,
    which leaves the ranking as it is)."""
    return _logit(float(np.mean(y[written]))) - _logit(float(np.mean(y)))


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str], l2: float = L2,
                train_mask: np.ndarray | None = None, written: np.ndarray | None = None) -> np.ndarray:
    """Scores of every row from a model fit without its group; `train_mask` limits what is fit on,
    `written` marks the rows whose share of answerable questions the scores are calibrated to."""
    scores = np.zeros(len(y))
    usable = np.ones(len(y), dtype=bool) if train_mask is None else train_mask
    written = np.ones(len(y), dtype=bool) if written is None else written
    for g in sorted(set(groups)):
        test = np.array([gg == g for gg in groups])
        train = ~test & usable
        mu, sd = standardizer(x[train])
        w, b = fit_logistic((x[train] - mu) / sd, y[train], l2)
        b += prior_shift(y[train], written[train])
        scores[test] = 1.0 / (1.0 + np.exp(-(((x[test] - mu) / sd) @ w + b)))
    return scores


MADE_DEPTH = 60  # hits fetched to find the first ones outside a question's gold documents


def features_of(extractor, text: str, hits, elsewhere: float | None = None) -> dict[str, float]:
    return extractor.extract(text, hits, elsewhere)[0] if hits else {k: 0.0 for k in extractor.NAMES}


def collect(sets: list[str], settings) -> list[dict]:
    """Features of every question of every set, through the product's retrieval."""
    from bot.guards.normalize import normalize_text
    from knowledge.answerability import AnswerabilityFeatures
    from knowledge.types import Scope

    rows = []
    for spec in sets:
        docs, questions, *links = spec.split(":")
        corpus = Path(docs).resolve().as_posix()  # two question files over one corpus share its topics
        with eval_docent(Path(docs), load_links(Path(links[0]) if links else None), settings=settings) as (docent, _):
            extractor = AnswerabilityFeatures(docent.embedder)
            for q in load_questions(Path(questions)):
                retriever = docent.retriever(Scope(EVAL_WORKSPACE, q.get("channel")))
                text = normalize_text(q["question"])
                hits = retriever.gate_hits(text, retriever.search(text))  # what the gate reads
                # Other channels' documents are the same with or without the gold ones (below).
                elsewhere = retriever.best_elsewhere(text)
                judged = retriever.search_text(text)  # the words the gate reads (spelling corrected)
                rows.append({"set": Path(questions).stem, "corpus": corpus, "id": q["id"], "topic": q.get("topic", ""),
                             "answerable": bool(q["answerable"]),
                             "features": features_of(extractor, judged, hits, elsewhere),
                             "made": False})
                if q["answerable"] and q["gold"]:
                    # The same question over the documents without its answer: what retrieval
                    # returns once every gold document is gone is a near miss made from the corpus.
                    gold = set(q["gold"])
                    deep = retriever.gate_hits(text, retriever.search(text, k=MADE_DEPTH))
                    rest = [h for h in deep if h.chunk.source not in gold]
                    rows.append({"set": Path(questions).stem, "corpus": corpus, "id": f"{q['id']}~without-gold",
                                 "topic": q.get("topic", ""), "answerable": False, "made": True,
                                 "features": features_of(extractor, judged, rest[: retriever.k], elsewhere)})
        print(f"{spec}: {sum(1 for r in rows if r['set'] == Path(questions).stem)} questions", file=sys.stderr)
    return rows


def topic_groups(rows: list[dict]) -> list[str]:
    """The out-of-fold groups: one per topic of a corpus, whichever question file asked it (a
    topic left out is left out of every file; rows saved before `corpus` existed use their set)."""
    return [f"{r.get('corpus', r['set'])}:{r['topic']}" for r in rows]


MADE_SUFFIX = " + near misses made from the corpus"


def ablation(rows: list[dict]) -> dict[str, dict]:
    """Each candidate feature set, fit with and without the made near misses, scored out of fold
    (leave one topic out) on the written questions only."""
    y = np.array([r["answerable"] for r in rows], dtype=float)
    groups = topic_groups(rows)
    written = np.array([not r["made"] for r in rows])
    labels = [bool(v) for v in y[written]]
    table = {}
    for name, names in CANDIDATES.items():
        x = np.array([[r["features"][k] for k in names] for r in rows])
        for made in (False, True):
            oof = list(out_of_fold(x, y, groups, train_mask=None if made else written, written=written)[written])
            at05 = abstention_at_false_abstention(oof, labels, 0.05)
            at10 = abstention_at_false_abstention(oof, labels, 0.10)
            table[name + (MADE_SUFFIX if made else "")] = {
                "auroc": round(roc_auc(oof, labels), 4), "abstain_at_fa05": round(at05["abstain"], 4),
                "abstain_at_fa10": round(at10["abstain"], 4), "threshold_fa05": at05["threshold"],
            }
    return table


def transfer(rows: list[dict], names: tuple[str, ...]) -> dict[str, dict]:
    """Fit on one corpus's rows (with and without the made near misses), threshold from that
    corpus's own out-of-fold scores at false abstention ≤ 5 %, score every other corpus's written
    questions: how the score carries to documents it never saw."""
    out = {}
    corpora = sorted({r["corpus"] for r in rows})
    for made in (True, False):
        for source in corpora:
            fit = [r for r in rows if r["corpus"] == source and (made or not r["made"])]
            scored = [r for r in rows if r["corpus"] != source and not r["made"]]
            if not fit or not scored:
                continue
            x = np.array([[r["features"][k] for k in names] for r in fit])
            y = np.array([r["answerable"] for r in fit], dtype=float)
            written = np.array([not r["made"] for r in fit])
            oof = out_of_fold(x, y, topic_groups(fit), written=written)[written]
            threshold = abstention_at_false_abstention(list(oof), [bool(v) for v in y[written]], MAX_FALSE_ABSTENTION)["threshold"]
            mu, sd = standardizer(x)
            w, b = fit_logistic((x - mu) / sd, y)
            b += prior_shift(y, written)
            xs = np.array([[r["features"][k] for k in names] for r in scored])
            scores = list(1.0 / (1.0 + np.exp(-(((xs - mu) / sd) @ w + b))))
            labels = [bool(r["answerable"]) for r in scored]
            unanswerable = [s for s, a in zip(scores, labels) if not a]
            answerable = [s for s, a in zip(scores, labels) if a]
            out[f"{Path(source).name} → others{MADE_SUFFIX if made else ''}"] = {
                "auroc": round(roc_auc(scores, labels), 4),
                "abstain": round(float(np.mean([s < threshold for s in unanswerable])), 4),
                "false_abstain": round(float(np.mean([s < threshold for s in answerable])), 4),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauges.train_answerability", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="DOCS_DIR:QUESTIONS_FILE[:LINKS_FILE] (dev splits only)")
    parser.add_argument("--out", type=Path, default=None, help="write the weights here (default: print only)")
    parser.add_argument("--features", default=SHIPPED,
                        help="which candidate set to ship (a key of CANDIDATES)")
    parser.add_argument("--made", action=argparse.BooleanOptionalAction, default=True,
                        help="also fit on near misses made from the corpus (each answerable question without its gold documents)")
    parser.add_argument("--rows", type=Path, default=None,
                        help="save every question's features here, or read them from here if the file exists")
    parser.add_argument("--transfer", action="store_true",
                        help="also print each corpus's model scored on the other corpora (with and without made rows)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if any("test" in Path(s.split(":")[1]).stem for s in args.sets):
        parser.error("train on dev splits only; test splits are for reporting")
    from bot.settings import Settings
    from knowledge.embeddings import MINILM

    settings = Settings()
    if args.rows and args.rows.exists():
        rows = json.loads(args.rows.read_text())  # features saved by an earlier run
    else:
        rows = collect(args.sets, settings)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    if len(set(topic_groups(rows))) < 2:
        parser.error("the questions need at least two topics: every score is out of fold, one topic left out")
    table = ablation(rows)
    chosen = CANDIDATES[args.features]
    fit_rows = [r for r in rows if args.made or not r["made"]]
    x = np.array([[r["features"][k] for k in chosen] for r in fit_rows])
    y = np.array([r["answerable"] for r in fit_rows], dtype=float)
    mu, sd = standardizer(x)
    w, b = fit_logistic((x - mu) / sd, y)
    b += prior_shift(y, np.array([not r["made"] for r in fit_rows]))
    shipped = table[f"{args.features}{MADE_SUFFIX if args.made else ''}"]
    weights = {
        "model_name": MINILM,
        "features": list(chosen),
        "mean": [round(float(v), 6) for v in mu],
        "scale": [round(float(v), 6) for v in sd],
        "coef": [round(float(v), 6) for v in w],
        "intercept": round(b, 6),
        "threshold": round(float(shipped["threshold_fa05"]), 4),
        "trained_on": [Path(s.split(":")[1]).name for s in args.sets],
        "n_rows": len(fit_rows),
        "n_made_rows": sum(r["made"] for r in fit_rows),
        "ablation_dev_out_of_fold": table,
    }
    if args.out:
        args.out.write_text(json.dumps(weights, indent=1) + "\n")
    if args.json:
        print(json.dumps({"ablation": table, "weights": weights}, indent=2))
    else:
        print(f"{'feature set':82} {'AUROC':>7} {'abst@FA≤5%':>11} {'abst@FA≤10%':>12}")
        for name, m in table.items():
            print(f"{name:82} {m['auroc']:7.3f} {m['abstain_at_fa05']:11.2f} {m['abstain_at_fa10']:12.2f}")
        print(f"shipped: {args.features!r}, threshold {weights['threshold']}")
    if args.transfer:
        for name, m in transfer(rows, chosen).items():
            print(f"transfer {name:70} AUROC {m['auroc']:.3f}  abstain {m['abstain']:.2f}  false abstention {m['false_abstain']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
