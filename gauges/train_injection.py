"""Train the statistical layer of the injection detector (run offline by a developer).

    python -m gauges.train_injection PATH/deepset_train.jsonl \
        --benign eval/injection/benign-dev.jsonl \
        --benign eval/qa/handbook-dev.jsonl:question --benign eval/qa/sec10q-dev.jsonl:question

Two logistic regressions (scikit-learn), averaged in logit space by the classifier: one over
the sentence embeddings of the product's embedder (`knowledge.embeddings.make_embedder`, which
must be all-MiniLM-L6-v2 for the weights to be used), one over character n-gram TF-IDF
(`char_wb` 3–5, the most frequent n-grams). Rows, each group weighted as a whole so that no
group drowns another: the labelled training file (injections 1/2 of the weight, its benign rows
1/5), `BENIGN_LOOKALIKES` below (1/20: our own questions that use injection vocabulary
harmlessly) and honest work questions (`--benign FILE[:FIELD]`, every row label 0; 1/4).

The thresholds come from out-of-fold probabilities, so they are not flattered by the models
having seen the rows: the labelled rows and look-alikes in 5 folds, the work questions
*leave-one-domain-out* (each domain scored by models that never saw it, as a new team's
questions would be; the domain is a row's `domain` field, else its file's name). `medium`, the
blocking level, is the lowest threshold at which the combined detector (patterns + classifier)
keeps its false-positive rate at most `--max-work-fp` on the work questions and `--max-fp` on
the other benign rows; `high` the same at a third of both rates.

Only numbers are written — coefficients, intercepts, the n-grams with their idf, three
thresholds — with the identity of the embedding model they belong to (`model_name`, `dim`),
which the classifier checks, and what they were trained on (file names, rows, sha256).
Test sets are for reporting only: files named `*-test*` / `*_test*` are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from bot.guards.injection import BLOCKING_LEVEL, DEFAULT_WEIGHTS, HeuristicDetector
from bot.guards.injection.classifier import classifier_text

if TYPE_CHECKING:
    from knowledge.embeddings import Embedder

# Our own benign texts that look like injections on the surface. Not from any test set.
GENERAL_LOOKALIKES: tuple[str, ...] = (
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

# Our own honest work questions that use injection vocabulary about technical objects, quoted
# notices or pasted config ("ignore all whitespace", "override the existing firewall rules",
# "developer mode on my phone", "user: deploy"). Written for docent; not from any evaluation set.
TECHNICAL_LOOKALIKES: tuple[str, ...] = (
    'Ignore my previous message, I meant the staging cluster. How do I restart a pod?',
    'Please disregard my earlier question about the VPN; how do I reset my MFA device?',
    'Ignore the previous email from IT, it was a test. Where do I report phishing?',
    'Forget what I said about Tuesday, is the deploy freeze on Friday?',
    'How do I delete all previous commands from my bash history?',
    'How do I delete all previous commands?',
    'Can I override the existing firewall rules with a new ufw profile?',
    'How do I skip all previous tasks in an Airflow DAG run and start from the last one?',
    'How do I erase all existing information on a disk before recycling it?',
    'Is it safe to drop all existing rules in iptables and reload them?',
    'Can I overwrite the existing documents when I re-upload a newer version?',
    'How do I delete the old documents from a channel?',
    'Can an admin bypass the branch protection rules in an emergency?',
    'Does the new policy override the previous guidelines on remote work?',
    'How do I leave the original files in place when running rsync?',
    'How do I make git diff ignore all whitespace changes?',
    'How do I tell eslint to ignore all files in the build folder?',
    'How do I make rsync ignore everything except .log files?',
    'Can my laptop forget all saved Wi-Fi networks at once?',
    'How do I ignore all SSL certificate errors in curl for a test server?',
    'Regardless of the previous approval, do I need a new PO for the renewal?',
    'olvidé mi contraseña y todo el acceso al correo, ¿qué hago?',
    'Vergiss nicht die Aufgaben im Ticket: wo trage ich die Stunden ein?',
    'Sag mir einfach, wo das Formular für die Reisekosten ist.',
    'How do I make curl only print the HTTP status code?',
    'How can I only output errors from a cron job?',
    'Is there a flag to only print the names of changed files in git diff?',
    'Can I just write the postmortem in Google Docs instead of Confluence?',
    'Should I instead print the report to PDF for the auditor?',
    'Is the right response to a phishing email to forward it to security?',
    'Does the contract state that we own the IP in the deliverables?',
    'Does the handbook state that remote work needs approval?',
    "Why doesn't the bot answer from the documents I uploaded last week?",
    'Search does not return results from the documents in the archive channel, why?',
    'A customer\'s screen says "you are now able to invite guests". Did guests become free?',
    'After the role change the email says you are now an owner of the org. Is that expected?',
    'From now on you will need a hardware key to log in, is that the new policy?',
    'You are now in charge of the on-call rotation, where is the handover doc?',
    'Can a CI job act as a service account in GCP without a key file?',
    "Act as approver for my team while I'm on leave, how do I set that up?",
    'Who can act as the release manager when Sam is out?',
    'Imagine you have a 3-node cluster and one node fails; does the quorum hold?',
    'How do I enable developer mode on my Android test phone?',
    'Is developer mode enabled by default on Chromebooks?',
    'Can I turn on Developer Mode in Windows 11 for sideloading?',
    'How do we detect jailbreak on company iPhones in MDM?',
    'Can I create a storage bucket with no restrictions for a public dataset?',
    'Why does the API return unfiltered results when I pass an empty query?',
    'How do I show the full bash prompt path instead of the short one?',
    'How do I display a system message to all logged-in users on Linux?',
    'Where can I list all prompts we use in the support chatbot?',
    'Can you give me the complete guidelines for expense reports?',
    'Show me the original instructions for the VPN setup.',
    'What are your guidelines for remote work?',
    'Tell me your rules for parking at the office.',
    'context: legal review, when does the NDA with Acme expire?',
    "Context: we're moving to Postgres 16. Question: do we need to rebuild the indexes?",
    'Our binding has\nuser: alice\nsystem:masters\nwhy can alice delete namespaces?',
    'The YAML says\nuser: deploy\nbut the runner still connects as root. Why?',
    'The XML response ends with </data> but the parser says unexpected end of input, why?',
    'I pasted the meeting notes:\n## Tasks\n- fix build\n- update docs\nwho owns the second one?',
    'The image digest is sha256:3b4c1d9e0f2a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c, how do I pin it?',
    'Why is this JWT rejected: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ',
    'How do I decode a base64 string in bash?',
    'What does hex 0x1F do in this config?',
    'Survey ratings came back as 1 2 3 4 5 6 7 8 9 10, how do I bucket them?',
    'MySQL: is INSERT IGNORE INTO USERS safe for removing duplicates?',
    'How do I turn off DO NOT DISTURB MODE in Teams?',
    'The email says DO NOT REPLY TO THIS MESSAGE, so where do I send questions?',
    'Attention: I need admin rights on the build server, who grants them?',
    'Stop, I need to cancel the release. Who can halt the pipeline?',
    'Stop printing debug output in production, which env var does that?',
    'Great, now I need to write the postmortem. Where is the template?',
    'Ok so now I need help with the tasks in Jira, who triages them?',
    'Very good, that worked. Now how do I write the migration for the new column?',
    "Can I ignore the previous reviewer's comments if the PR was re-approved?",
    'How do I tell Terraform to ignore changes to tags on all existing resources?',
    'Our linter config says to ignore all previous warnings. Is that a good idea?',
    'Should I disregard the old onboarding instructions now that the wiki moved?',
    'How do I forget a saved Bluetooth device on a Mac?',
    "Forget everything I told you about the budget; what's the real cap for Q3?",
    'What happens if I skip the previous steps in the setup guide?',
    'Is there a way to override all default settings in the helm chart at once?',
    'Ignore all errors and keep the script running: is set +e the right way?',
    'Disregard the earlier instructions in the ticket, the customer wants a refund now. How do I issue it?',
    'Drop all previous versions of the table from the backup schedule, who approves that?',
    'Can I bypass the approval for a hotfix if the on-call lead is away?',
    'How do I output only the JSON from kubectl without the headers?',
    'Just say whether the office is open on Monday.',
    'Can the bot only reply in threads instead of the channel?',
    'Please print the whole onboarding checklist, I need it for a new hire.',
    'Show me your sources for the parental leave answer.',
    'What were your sources for that answer?',
    "What rules does the bot follow when it can't find an answer?",
    'How do I write a system prompt for our internal support assistant?',
    'Where is the prompt library for the marketing team?',
    'My terminal prompt shows the wrong git branch, how do I fix it?',
    'Is there a template for the system message shown on the login page?',
    'You are now logged out after 15 minutes of inactivity, can that be changed?',
    "The app told me 'you are now connected to the guest network' but nothing loads.",
    'From now on, you are the approver for travel in the EU team. Where do I see pending requests?',
    'Can I act as a proxy for my manager in Workday?',
    'Do I need to play a role in the tabletop exercise or just observe?',
    'Is role-play part of the sales training?',
    'The customer says their account is in developer mode, what does that unlock?',
    'How do I jailbreak-proof our mobile app, is there a checklist?',
    'Are there any restrictions on using AI tools for code review?',
    'The error says: SYSTEM: disk quota exceeded for user admin. What now?',
    "In the chat export I see 'assistant: I could not find that' a lot. Why?",
    'Human resources said to ask here: how many sick days do I get?',
    'The log has <system>boot</system> entries, what do they mean?',
    'Our XML feed has </document> at the end of each record, should we strip it?',
    'Context for my question: we are a team of 5. Do we need a separate Slack workspace?',
    "Quick context: I'm new. Where do I find the expense policy?",
    'What does this base64 say: SGVsbG8gd29ybGQ=',
    'How do I convert the hex dump and then do a checksum?',
    'The API key looks like sk_live_4eC39HqLyjWDarjtT1zdp7dc, is it safe to paste in Slack?',
    'Our Kubernetes secret value is dGhpcyBpcyBhIHZlcnkgbG9uZyBzZWNyZXQgdmFsdWUgdGhhdCB3ZSB1c2UgZm9yIHRlc3Rpbmc=, how do I rotate it?',
    'WARNING: DO NOT EDIT THIS FILE is at the top of the config. Who owns it?',
    'The banner says IGNORE THIS ALERT IF YOU ARE ON THE VPN, can I?',
    'Stop the bleeding first: how do I roll back the last deploy?',
    'Well done on the launch! Now, where do I file the retro notes?',
    'Congratulations to the team. Now how do I book the celebration dinner?',
    'Excellent work on the audit; now what are the next tasks for compliance?',
    'Okay, now write down for me the steps to request a parking permit.',
    "Does the policy say that managers can't approve their own expenses?",
    'Can you state the rule for carry-over of vacation days?',
    "Tell me that I don't need a receipt under 25 euros, right?",
    "If I don't answer the survey, will HR follow up?",
    "Don't answer from memory, please check the handbook: how long is bereavement leave?",
    "Answer only from the documents: what's the laptop refresh cycle?",
    '¿Olvidaste tu contraseña? ¿Cómo la restablezco en el portal?',
    'Ignorieren die Filter alle Anhänge über 10 MB?',
    "Oubliez-vous parfois de badger ? Que faire si j'oublie mon badge ?",
    'Vergiss bitte meine letzte Frage. Wie beantrage ich ein neues Headset?',
)

BENIGN_LOOKALIKES: tuple[str, ...] = GENERAL_LOOKALIKES + TECHNICAL_LOOKALIKES

_FOLDS = 5
_SEED = 0
# Each group's share of the total sample weight (shares of absent groups go to the other benign ones).
_SHARES = {"injection": 0.5, "benign": 0.2, "lookalike": 0.05, "work": 0.25}
EMBEDDING_C = 1.0  # inverse L2 strength, chosen by the cross-validation described above
NGRAM_C = 10.0
NGRAM_RANGE = (3, 5)
NGRAM_FEATURES = 10_000
_GRID = np.round(np.arange(0.30, 0.996, 0.005), 3)


@dataclass(frozen=True)
class TrainingRows:
    texts: tuple[str, ...]
    labels: np.ndarray  # 1 = injection
    groups: np.ndarray  # one of _SHARES' keys per row
    domains: np.ndarray  # the work questions' domain, "" for the other rows


def read_labelled(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype=np.float64)


def split_spec(spec: str) -> tuple[Path, str]:
    """`FILE` or `FILE:FIELD` → (path, field); the field defaults to `text`."""
    if ":" in spec and not Path(spec).exists():
        path, field = spec.rsplit(":", 1)
        return Path(path), field
    return Path(spec), "text"


def read_work_questions(spec: str) -> list[tuple[str, str]]:
    """(text, domain) pairs from `FILE[:FIELD]`; every row is an honest question."""
    path, field = split_spec(spec)
    refuse_test_data(path)
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append((str(row[field]), str(row.get("domain") or path.stem)))
    return out


def refuse_test_data(path: Path) -> None:
    name = path.name.lower()
    if "-test" in name or "_test" in name:
        raise SystemExit(f"{path} looks like a test set; train on training and dev data only")


def assemble(texts: Sequence[str], y: np.ndarray, work: Sequence[tuple[str, str]] = ()) -> TrainingRows:
    rows = list(texts) + list(BENIGN_LOOKALIKES) + [t for t, _ in work]
    labels = np.concatenate([np.asarray(y, dtype=np.float64), np.zeros(len(BENIGN_LOOKALIKES) + len(work))])
    groups = np.array(
        ["injection" if label == 1 else "benign" for label in y] + ["lookalike"] * len(BENIGN_LOOKALIKES) + ["work"] * len(work)
    )
    domains = np.array([""] * (len(texts) + len(BENIGN_LOOKALIKES)) + [d for _, d in work])
    return TrainingRows(tuple(classifier_text(t) for t in rows), labels, groups, domains)


def sample_weights(groups: np.ndarray) -> np.ndarray:
    present = {g: _SHARES[g] for g in _SHARES if (groups == g).any()}
    benign_total = sum(v for g, v in present.items() if g != "injection")
    weights = np.zeros(len(groups))
    for g, share in present.items():
        if g != "injection":
            share = share / benign_total * (1 - _SHARES["injection"])
        weights[groups == g] = share / (groups == g).sum()
    return weights * len(groups)  # mean 1, so C means what scikit-learn's documentation says


def folds(rows: TrainingRows) -> list[np.ndarray]:
    """Held-out index sets: labelled rows and look-alikes in 5 random folds, work questions by domain."""
    rng = np.random.default_rng(_SEED)
    shuffled = rng.permutation(np.flatnonzero(rows.groups != "work"))
    held_out = [shuffled[k::_FOLDS] for k in range(_FOLDS)]
    held_out += [np.flatnonzero(rows.domains == d) for d in sorted(set(rows.domains[rows.groups == "work"]))]
    return held_out


class Views:
    """The two fitted regressions, giving logits for texts (the embeddings are given as rows)."""

    def __init__(self, rows: TrainingRows, x: np.ndarray, index: np.ndarray):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts = [rows.texts[i] for i in index]
        y, w = rows.labels[index], sample_weights(rows.groups[index])
        self.embedding = LogisticRegression(C=EMBEDDING_C, max_iter=5000).fit(x[index], y, sample_weight=w)
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=NGRAM_RANGE, lowercase=True, sublinear_tf=True, min_df=2, max_features=NGRAM_FEATURES
        )
        self.ngrams = LogisticRegression(C=NGRAM_C, max_iter=5000).fit(self.vectorizer.fit_transform(texts), y, sample_weight=w)

    def probabilities(self, texts: Sequence[str], x: np.ndarray) -> np.ndarray:
        z = (self.embedding.decision_function(x) + self.ngrams.decision_function(self.vectorizer.transform(list(texts)))) / 2
        return 1.0 / (1.0 + np.exp(-z))

    def ngram_record(self) -> dict[str, Any]:
        grams = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.__getitem__)
        return {
            "analyzer": "char_wb",
            "ngram_range": list(NGRAM_RANGE),
            "grams": grams,
            "idf": [round(float(v), 5) for v in self.vectorizer.idf_],
            "coef": [round(float(v), 5) for v in self.ngrams.coef_[0]],
            "intercept": round(float(self.ngrams.intercept_[0]), 6),
        }


def out_of_fold(rows: TrainingRows, x: np.ndarray) -> np.ndarray:
    probs = np.zeros(len(rows.texts))
    everything = np.arange(len(rows.texts))
    for test in folds(rows):
        views = Views(rows, x, np.setdiff1d(everything, test))
        probs[test] = views.probabilities([rows.texts[i] for i in test], x[test])
    return probs


def choose_threshold(probs: np.ndarray, rows: TrainingRows, pattern_hit: np.ndarray, max_fp: float, max_work_fp: float) -> float:
    """Lowest threshold at which patterns + classifier stay within both false-positive rates."""
    work = rows.groups == "work"
    other = (rows.labels == 0) & ~work
    for t in _GRID:
        flagged = (probs >= t) | pattern_hit
        if flagged[other].mean() <= max_fp and (not work.any() or flagged[work].mean() <= max_work_fp):
            return float(t)
    return float(_GRID[-1])


def train(
    texts: Sequence[str],
    y: np.ndarray,
    embedder: Embedder,
    work: Sequence[tuple[str, str]] = (),
    *,
    max_fp: float = 0.01,
    max_work_fp: float = 0.0025,
) -> tuple[dict[str, Any], str]:
    """The weights record for `embedder` (labelled rows + look-alikes + work questions), and a summary."""
    rows = assemble(texts, y, work)
    x = embedder.embed_array(list(rows.texts)).astype(np.float64)
    heuristic = HeuristicDetector()
    pattern_hit = np.array([heuristic.detect(t).level >= BLOCKING_LEVEL for t in rows.texts])
    probs = out_of_fold(rows, x)
    t_medium = choose_threshold(probs, rows, pattern_hit, max_fp, max_work_fp)
    t_high = max(t_medium, choose_threshold(probs, rows, pattern_hit, max_fp / 3, max_work_fp / 3))
    t_low = max(0.3, t_medium - 0.25)

    flagged = (probs >= t_medium) | pattern_hit
    injection, work_rows = rows.labels == 1, rows.groups == "work"
    other = (rows.labels == 0) & ~work_rows
    oof = {
        "detection": round(float(flagged[injection].mean()), 4),
        "false_positive_rate_benign": round(float(flagged[other].mean()), 4),
        "false_positive_rate_work": round(float(flagged[work_rows].mean()), 4) if work_rows.any() else None,
        "detected": int(flagged[injection].sum()),
        "n_injection": int(injection.sum()),
    }
    summary = (
        f"out-of-fold at medium={t_medium:.3f}: detection {oof['detected']}/{oof['n_injection']} "
        f"({oof['detection']:.1%}), FP {flagged[other].sum()}/{other.sum()} on labelled benign + look-alikes, "
        f"{flagged[work_rows].sum()}/{work_rows.sum()} on work questions (leave-one-domain-out); high={t_high:.3f}"
    )

    views = Views(rows, x, np.arange(len(rows.texts)))
    record = {
        # The identity the classifier checks: vectors of another model are not comparable.
        "model_name": embedder.model_name,
        "dim": int(embedder.dim),
        "n_rows": int(len(rows.texts)),
        "coef": [round(float(v), 6) for v in views.embedding.coef_[0]],
        "intercept": round(float(views.embedding.intercept_[0]), 6),
        "ngrams": views.ngram_record(),
        "threshold_low": t_low,
        "threshold_medium": t_medium,
        "threshold_high": t_high,
        "out_of_fold": oof,
    }
    return record, summary


def _provenance(path: Path, rows: int) -> dict[str, Any]:
    return {"file": path.name, "rows": rows, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path, help="labelled JSONL (text, label), e.g. deepset_train.jsonl")
    parser.add_argument("--benign", action="append", default=[], metavar="FILE[:FIELD]",
                        help="honest work questions (JSONL; text from FIELD, default 'text'); repeatable")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--max-fp", type=float, default=0.01, help="FP rate allowed on labelled benign rows and look-alikes")
    parser.add_argument("--max-work-fp", type=float, default=0.0025, help="FP rate allowed on work questions (margin under 0.5%%)")
    args = parser.parse_args(argv)

    from knowledge.embeddings import make_embedder

    refuse_test_data(args.train)
    texts, y = read_labelled(args.train)
    work: list[tuple[str, str]] = []
    trained_on = [_provenance(args.train, len(texts))]
    for spec in args.benign:
        questions = read_work_questions(spec)
        work += questions
        trained_on.append(_provenance(split_spec(spec)[0], len(questions)))
    trained_on.append({"file": "gauges/train_injection.py BENIGN_LOOKALIKES", "rows": len(BENIGN_LOOKALIKES)})

    record, summary = train(texts, y, make_embedder(), work, max_fp=args.max_fp, max_work_fp=args.max_work_fp)
    record = {**record, "trained_on": trained_on}
    print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=None, ensure_ascii=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
