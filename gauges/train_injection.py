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
