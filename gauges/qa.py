"""`docent eval qa`: questions asked through the real answer path over a folder of documents.

Reports retrieval (recall@1/3/5 = share of a question's gold documents among the top k distinct
documents; hit@1/3/5 = any gold document there), the answerability score's trade-off over the
whole set (ROC AUC; the abstention on unanswerable questions at a false-abstention rate ≤ 5 % and
≤ 10 %, each at the best threshold for this set — the curve, not the deployed setting), what the
deployed decision actually did (abstention on unanswerable, false abstention on answerable — a
question blocked by the injection guard is a refusal too), latency, and one row per question.

Questions file: JSONL with id, question, gold (document paths relative to the folder), answerable;
optional `channel` (the channel the question is asked in; default: none, i.e. it sees only
workspace-wide documents), `kind`, and `history` (the earlier questions in the thread: a
follow-up row; each is asked first, and the follow-up goes with that thread). With
`history_author`, those earlier questions were asked by that other person, not by the asker of the
follow-up. `--links FILE`
(JSON `{channel: [glob, …]}`) links the matching documents to that channel only; every other
document is workspace-wide.

The folder is ingested into its own data directory; ingest is idempotent, so a second run only
re-reads files (nothing is re-embedded unless it changed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import statistics
import time
from pathlib import Path
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from bot.settings import Settings
from bot.types import Outcome, PriorTurn, Question, thread_question_positions
from knowledge.followups import search_text
from knowledge.types import Scope

if TYPE_CHECKING:
    from bot.core import Docent

EVAL_WORKSPACE = "eval"
REFUSALS = (Outcome.abstained, Outcome.blocked)


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_questions(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        missing = {"id", "question", "gold", "answerable"} - set(r)
        if missing:
            raise ValueError(f"{path}: question {r.get('id', '?')} lacks {sorted(missing)}")
    return rows


def load_links(path: Path | None) -> dict[str, list[str]]:
    if path is None:
        return {}
    links = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(links, dict) or not all(isinstance(v, list) for v in links.values()):
        raise ValueError(f"{path}: expected {{channel: [glob, …]}}")
    return links


def channel_of(name: str, links: dict[str, list[str]]) -> str | None:
    """The channel a document is linked to (first matching glob), or None for workspace-wide."""
    for channel, globs in links.items():
        if any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(Path(name).name, g) for g in globs):
            return channel
    return None


def roc_auc(scores: list[float], labels: list[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def abstention_at_false_abstention(scores: list[float], labels: list[bool], max_false: float) -> dict:
    """The best threshold on this set for abstaining (score < t) with false abstention ≤ max_false:
    the abstention rate on unanswerable questions it reaches, and the threshold."""
    pos = sorted(s for s, y in zip(scores, labels) if y)
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return {"abstain": None, "false_abstain": None, "threshold": None}
    best = {"abstain": 0.0, "false_abstain": 0.0, "threshold": min(scores)}
    for t in sorted(set(scores)) + [max(scores) + 1e-9]:
        false_rate = sum(p < t for p in pos) / len(pos)
        if false_rate > max_false:
            break
        rate = sum(n < t for n in neg) / len(neg)
        if rate >= best["abstain"]:
            best = {"abstain": rate, "false_abstain": false_rate, "threshold": t}
    return best


@contextmanager
def eval_docent(
    docs_dir: Path,
    links: dict[str, list[str]],
    *,
    settings: Settings,
    on_progress: Callable[[int, int, str], None] | None = None,
    chat_model=None,
) -> Iterator[tuple["Docent", dict]]:
    """A Docent over `docs_dir` ingested into its own data dir (documents linked per `links`),
    with limits, caps and the cache off: the gauge measures answering, not the guards."""
    from admin.operations import UploadItem, UploadOutcome
    from admin.types import Actor
    from bot.core import Docent
    from knowledge.loaders import SUPPORTED_EXTENSIONS

    docs_dir = docs_dir.resolve()
    key = hashlib.sha1(f"{docs_dir}\x1f{json.dumps(links, sort_keys=True)}".encode()).hexdigest()[:10]
    eval_settings = settings.model_copy(
        update={
            "data_dir": settings.data_dir / "eval-qa" / key,
            # The gauge measures answering, not the guards: no limits or caps, no shared cache.
            "rate_limit_user": "1000000/minute",
            "rate_limit_channel": "1000000/minute",
            "rate_limit_workspace": "1000000/minute",
            "user_daily_cap_usd": 1e9,
            "workspace_daily_cap_usd": 1e9,
            "redis_url": None,
            "database_url": None,
            "cache_ttl_s": 0,
        }
    )
    eval_settings.data_dir.mkdir(parents=True, exist_ok=True)
    actor = Actor("cli", EVAL_WORKSPACE, "eval", is_platform_admin=True)
    with Docent.from_settings(eval_settings, chat_model=chat_model) as docent:
        files = sorted(f for f in docs_dir.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_EXTENSIONS)
        ingest_errors = []
        started = time.perf_counter()
        # The way `docent ingest` uploads a folder: one upload_many per run of files bound for the
        # same scope, in file order (the store's insertion order breaks ties between equal scores).
        runs: list[tuple[Scope, list[UploadItem]]] = []
        for f in files:
            name = f.relative_to(docs_dir).as_posix()
            scope = Scope(EVAL_WORKSPACE, channel_of(name, links) or "*")
            if not runs or runs[-1][0] != scope:
                runs.append((scope, []))
            runs[-1][1].append(UploadItem(name, f.read_bytes))
        finished = 0

        def done(outcome: UploadOutcome) -> None:
            nonlocal finished
            finished += 1
            if outcome.error is not None:  # a bad file is reported, not fatal to the gauge
                ingest_errors.append(f"{outcome.name}: {outcome.error}")
            if on_progress:
                on_progress(finished, len(files), "ingesting")

        for scope, items in runs:
            docent.admin.upload_many(actor, items, scope, on_done=done)
        if docent.speller is not None:  # every question corrected from the first, whatever the load
            for channel in [None, *links]:
                docent.speller.warm(Scope(EVAL_WORKSPACE, channel))
        yield docent, {
            "n_documents": len(files), "ingest_errors": ingest_errors,
            "ingest_s": round(time.perf_counter() - started, 1),
            "relevance_threshold": eval_settings.relevance_threshold,
        }


def thread_of(docent: "Docent", earlier: list[str], channel: str | None,
              author: str | None = None) -> tuple[PriorTurn, ...]:
    """The thread before a follow-up: each earlier question asked, then docent's reply. The
    questions are the follow-up's asker's own, or (`author`) another person's."""
    turns: list[PriorTurn] = []
    for text in earlier:
        reply = docent.ask(Question(platform="eval", workspace=EVAL_WORKSPACE, channel=channel,
                                    user=author or "eval", text=text, history=tuple(turns)))
        turns += [PriorTurn(author or "user", text, to_docent=True), PriorTurn("assistant", reply.text, is_bot=True)]
    return tuple(turns)


def evaluate_qa(
    docs_dir: Path,
    questions_path: Path,
    *,
    settings: Settings,
    links_path: Path | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    chat_model=None,
    history_author: str | None = None,
) -> dict:
    """`history_author`: every row's `history` was asked by that person, not by the asker."""
    from bot.guards.normalize import normalize_text

    questions = load_questions(questions_path)
    links = load_links(links_path)
    with eval_docent(docs_dir, links, settings=settings, on_progress=on_progress, chat_model=chat_model) as (docent, info):
        recall: dict[int, list[float]] = {1: [], 3: [], 5: []}
        hit: dict[int, list[float]] = {1: [], 3: [], 5: []}
        latencies: list[float] = []
        rows = []
        for i, row in enumerate(questions):
            if on_progress:
                on_progress(i, len(questions), "asking")
            channel = row.get("channel")
            retriever = docent.retriever(Scope(EVAL_WORKSPACE, channel))
            # A follow-up row carries the thread's earlier questions (the asker's, or with
            # `history_author` another person's): each is asked first, in the same channel, and
            # the thread (question, docent's reply, …) goes with the follow-up.
            earlier = row.get("history") or []
            question = Question(platform="eval", workspace=EVAL_WORKSPACE, channel=channel, user="eval",
                                text=row["question"], history=thread_of(docent, earlier, channel, history_author))
            # As the chain reads it: the thread the guards let through, the question in front.
            screened = docent.guards.screened_history(question)
            text = search_text(normalize_text(row["question"]),
                               [screened[i].text for i in thread_question_positions(screened)])
            ranked_docs: list[str] = []
            for h in retriever.search(text, k=20):
                if h.chunk.source not in ranked_docs:
                    ranked_docs.append(h.chunk.source)
            score = docent.gate(retriever)(text, retriever.search(text)).score

            t0 = time.perf_counter()
            answer = docent.ask(question)
            latencies.append((time.perf_counter() - t0) * 1000)
            gold = set(row["gold"])
            if row["answerable"]:
                for k in recall:
                    recall[k].append(len(gold & set(ranked_docs[:k])) / len(gold) if gold else 0.0)
                    hit[k].append(float(bool(gold & set(ranked_docs[:k]))))
            gold_rank = next((r + 1 for r, d in enumerate(ranked_docs) if d in gold), None)
            rows.append(
                {
                    "id": row["id"],
                    "answerable": bool(row["answerable"]),
                    "kind": row.get("kind", "answerable" if row["answerable"] else "unanswerable"),
                    "channel": channel,
                    "outcome": str(answer.outcome),
                    "score": round(score, 4),
                    "gold_rank": gold_rank,
                    "gold": sorted(gold),
                    "top_docs": ranked_docs[:5],
                    "cited": [s.source for s in answer.sources],
                }
            )
        if on_progress:
            on_progress(len(questions), len(questions), "done")
        model = docent.engine.model_name
        threshold = docent.answerability.threshold

    def mean(xs: list) -> float:
        return float(statistics.fmean(xs)) if xs else 0.0

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    scores = [r["score"] for r in rows]
    labels = [r["answerable"] for r in rows]
    at05 = abstention_at_false_abstention(scores, labels, 0.05)
    at10 = abstention_at_false_abstention(scores, labels, 0.10)
    kinds = sorted({r["kind"] for r in unanswerable})
    return {
        "n_questions": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "n_documents": info["n_documents"],
        "ingest_errors": info["ingest_errors"],
        "ingest_s": info["ingest_s"],
        "model": model,
        **({"history_author": history_author} if history_author else {}),
        "relevance_threshold": info["relevance_threshold"],
        "answerability_threshold": threshold,
        "recall@1": mean(recall[1]),
        "recall@3": mean(recall[3]),
        "recall@5": mean(recall[5]),
        "hit@1": mean(hit[1]),
        "hit@3": mean(hit[3]),
        "hit@5": mean(hit[5]),
        "answerability_auroc": roc_auc(scores, labels),
        "abstain_at_fa05": at05["abstain"],
        "abstain_at_fa05_threshold": at05["threshold"],
        "abstain_at_fa10": at10["abstain"],
        "abstain_at_fa10_threshold": at10["threshold"],
        "abstain_rate_unanswerable": mean([r["outcome"] in REFUSALS for r in unanswerable]),
        "false_abstain_rate": mean([r["outcome"] in REFUSALS for r in answerable]),
        "blocked": sum(r["outcome"] == Outcome.blocked for r in rows),
        "abstain_by_kind": {k: mean([r["outcome"] in REFUSALS for r in unanswerable if r["kind"] == k]) for k in kinds},
        "latency_p50_ms": _percentile(latencies, 0.50),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "questions": rows,
    }
