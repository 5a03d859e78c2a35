"""Train the embedding layer of the injection detector (run offline by a developer).

    python -m gauges.train_injection /path/to/deepset_train.jsonl [--out bot/guards/data/injection_lr.json]

Logistic regression (numpy, L2, full-batch gradient descent) over all-MiniLM-L6-v2
embeddings of the training rows plus `BENIGN_LOOKALIKES` below: our own questions that use
injection vocabulary harmlessly ("how do I ignore a file in git?"). The thresholds are chosen
on out-of-fold probabilities (5-fold cross-validation), so they are not flattered by the
model having seen the rows: `medium` (the blocking level) keeps the false-positive rate of
the *combined* detector (heuristics + classifier) on benign training rows at most 2 %.

Only numbers are written — the coefficients, the intercept and three thresholds — with the
identity of the model they belong to (`model_name`, `dim` of the embedder used), which the
classifier checks before it uses them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.guards.injection import BLOCKING_LEVEL, DEFAULT_WEIGHTS, HeuristicDetector

if TYPE_CHECKING:
    from knowledge.embeddings import Embedder

# Our own benign texts that look like injections on the surface. Not from any test set.
BENIGN_LOOKALIKES: tuple[str, ...] = (
    "How do I ignore a file in git?",
    "How can I make git forget a file that is now in .gitignore?",
    "What are the instructions for submitting a travel reimbursement?",
    "Where are the previous meeting notes for the design review?",
    "Can you act as a reviewer on my pull request next week?",
    "Who should act as the incident commander during an outage?",
    "What is the system prompt for new hires in the onboarding checklist?",
    "How do I reset my system password?",
    "What does the developer mode setting do in Chrome?",
    "How do I print the onboarding guide?",
    "Please disregard my earlier message, the meeting moved to 3pm. When is the retro?",
    "What should I do if I forget my laptop password?",
    "Can I roleplay a customer interview to practice user research?",
    "How do I pretend to be a new user when testing the signup flow?",
    "What are our rules for naming Slack channels?",
    "Show me the guidelines for writing blog posts.",
    "What is the new task management tool we use?",
    "Which instructions apply to contractors working remotely?",
    "How do I override the default timeout in the deploy script?",
    "Where can I find the original instructions for the security review?",
    "Wie beantrage ich Urlaub über die Feiertage?",
    "Wo finde ich die Anweisungen für die Reisekostenabrechnung?",
    "Kannst du mir sagen, wie ich mein Passwort zurücksetze?",
    "Was sind die Regeln für Homeoffice in unserem Team?",
    "Vergiss nicht, den Bericht bis Freitag einzureichen – wo lade ich ihn hoch?",
    "Welche vorherigen Versionen des Handbuchs gibt es?",
    "What is the policy on translating documents into Spanish?",
    "How do I respond to a phishing email?",
    "Summarize the parental leave policy.",
    "Explain how on-call rotations work here.",
    "What's the process for requesting a new laptop?",
    "How do I change my Slack display name?",
    "What are the steps to deploy to production?",
    "Is there a template for incident postmortems?",
    "How do I add a new member to the GitHub organization?",
    "Who approves purchases over the micro-purchase threshold?",
    "What does 'DAN' stand for in our data architecture notes?",
    "Tell me about the history of the team.",
    "Write a short summary of the accessibility guidelines.",
    "What is the command to list running Docker containers?",
    # General questions with alarming words used harmlessly, and questions on sensitive topics
    # asked for understanding: an assistant must answer these, not treat them as attacks.
    "How do I kill a stuck background job in bash?",
    "What's the best way to terminate an idle database connection?",
    "How can I execute a shell command from Python?",
    "How do I shoot a time-lapse video on my phone?",
    "What is the fastest way to crush garlic?",
    "How do I blow up a photo without losing quality?",
    "Where can I buy a can of spray paint for a school project?",
    "How do I attack a hard problem in a coding interview?",
    "What does it mean to bomb an exam?",
    "How can I hijack my own productivity with better habits?",
    "How do I strangle weeds in my vegetable garden?",
    "What is the best way to steal the show at a talent contest?",
    "How do I break into the tech industry without a degree?",
    "What's a good way to smash a volleyball serve?",
    "How do I get rid of a virus on my laptop?",
    "What is the definition of fraud?",
    "What does the word 'assassination' mean?",
    "What is phishing and how do attackers use it?",
    "Why did the Roman Empire fall?",
    "What happened during the Cuban Missile Crisis?",
    "What were the causes of the Rwandan genocide?",
    "Why is it wrong to discriminate against people based on religion?",
    "Why should robots not be allowed to vote?",
    "Why can't clouds own property?",
    "What is the home address of the fictional detective Sherlock Holmes?",
    "What is the public biography of the current UN Secretary-General?",
    "How did the Prohibition era affect organized crime?",
    "What is the plot of the movie Heat?",
    "How do video games depict violence, and is that harmful?",
    "What are the symptoms of carbon monoxide poisoning?",
    "How do police investigate burglaries?",
    "How do I safely dispose of old medication?",
    "What is the capital of Australia?",
    "How many calories are in a banana?",
    "Can you recommend a book about negotiation?",
    "Write a haiku about autumn leaves.",
    "Translate 'good morning' into Italian.",
    "What are the health benefits of green tea?",
    "How does compound interest work?",
    "Was ist die Hauptstadt von Kanada?",
    "Wie funktioniert eine Wärmepumpe?",
    "Warum ist der Himmel blau?",
)

_FOLDS = 5


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype=np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000, lr: float = 2.0) -> tuple[np.ndarray, float]:
    """Full-batch gradient descent; class-balanced so the minority class is not ignored."""
    n, d = x.shape
    w = np.zeros(d)
    b = 0.0
    pos = y.mean()
    sample_weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)) / n
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        g = (p - y) * sample_weight
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum()
    return w, b


def _predict(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ w + b)))


def out_of_fold(x: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    probs = np.zeros(len(y))
    for k in range(_FOLDS):
        test = order[k::_FOLDS]
        train = np.setdiff1d(order, test)
        w, b = fit_logistic(x[train], y[train])
        probs[test] = _predict(x[test], w, b)
    return probs


def choose_threshold(probs: np.ndarray, y: np.ndarray, heuristic_hit: np.ndarray, max_fp: float) -> float:
    """Lowest threshold whose combined false-positive rate on benign rows stays ≤ max_fp."""
    benign = y == 0
    for t in np.round(np.arange(0.30, 0.996, 0.005), 3):
        flagged = (probs >= t) | heuristic_hit
        if flagged[benign].mean() <= max_fp:
            return float(t)
    return 0.995


def train(texts: list[str], y: np.ndarray, embedder: Embedder, max_fp: float = 0.015) -> tuple[dict[str, Any], str]:
    """The weights record for `embedder` (rows + `BENIGN_LOOKALIKES`), and a one-line summary."""
    texts = list(texts) + list(BENIGN_LOOKALIKES)
    y = np.concatenate([y, np.zeros(len(BENIGN_LOOKALIKES))])
    x = embedder.embed_array(texts).astype(np.float64)

    heuristic = HeuristicDetector()
    heuristic_hit = np.array([heuristic.detect(t).level >= BLOCKING_LEVEL for t in texts])
    probs = out_of_fold(x, y)
    t_medium = choose_threshold(probs, y, heuristic_hit, max_fp)
    t_high = choose_threshold(probs, y, np.zeros_like(heuristic_hit), max_fp / 3)
    t_high = max(t_high, t_medium)
    t_low = max(0.3, t_medium - 0.25)
    flagged = (probs >= t_medium) | heuristic_hit
    summary = (
        f"out-of-fold at medium={t_medium:.3f}: detection {flagged[y == 1].mean():.1%}, "
        f"FP {flagged[y == 0].mean():.1%} (classifier alone: det {(probs >= t_medium)[y == 1].mean():.1%}, "
        f"FP {(probs >= t_medium)[y == 0].mean():.1%}); high={t_high:.3f}"
    )

    w, b = fit_logistic(x, y)
    record = {
        # The identity the classifier checks: vectors of another model are not comparable.
        "model_name": embedder.model_name,
        "dim": int(embedder.dim),
        "trained_on": "deepset/prompt-injections train split + docent's own benign look-alikes",
        "n_rows": int(len(y)),
        "coef": [round(float(v), 6) for v in w],
        "intercept": round(float(b), 6),
        "threshold_low": t_low,
        "threshold_medium": t_medium,
        "threshold_high": t_high,
    }
    return record, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path, help="deepset_train.jsonl (text,label)")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--max-fp", type=float, default=0.015, help="target FP rate at the blocking level (margin under 2%%)")
    args = parser.parse_args(argv)

    from knowledge.embeddings import MiniLMEmbeddings

    texts, y = _read(args.train)
    record, summary = train(texts, y, MiniLMEmbeddings(), args.max_fp)
    print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=None))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
