"""Coverage gaps: the questions docent couldn't answer well, grouped by meaning, so admins know
which document to add next.

A gap is a request in the window that docent abstained on, or that someone gave 👎 (their
latest vote). Injection blocks and withheld answers are left out: they are attacks or output
checks, not missing documents. Questions are the ledger's stored text — already PII-redacted;
a ledger that stores hashes (`DOCENT_STORE_QUESTION=hash`) has no text to group, and the report
says so.

Grouping: identical questions (case and spacing aside) are counted together, the distinct texts
are embedded with the bot's embedder and clustered agglomeratively (average linkage on cosine
distance, cut where the average similarity falls below `min_similarity`). Each group is shown by
its medoid — the question closest, on average, to the others.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

import numpy as np
from sqlalchemy import exists, or_, select

from admin.db import Database
from admin.models import Feedback, RequestRecord

if TYPE_CHECKING:
    from knowledge.embeddings import Embedder

GAP_OUTCOME = "abstained"
# MiniLM: on 22 questions the 18F handbook doesn't answer, rewordings of one need scored
# 0.40–0.75 cosine and different needs at most 0.34; 0.40 keeps those apart.
DEFAULT_MIN_SIMILARITY = 0.40
MAX_QUESTIONS = 2000  # distinct texts clustered (the newest): pairwise distances grow as n²
MAX_ROWS = 50_000  # ledger rows read per report
SHOWN_EXAMPLES = 3
SHOWN_COMMENTS = 3
_HASHED = re.compile(r"[0-9a-f]{64}")  # bot.guards.pii.question_hash: an HMAC-SHA256 hex digest
HASHED_NOTE = ("{n} of them are stored hashed (DOCENT_STORE_QUESTION=hash) and can't be grouped: "
               "coverage gaps need redacted questions (DOCENT_STORE_QUESTION=redacted).")


@dataclass(frozen=True)
class GapCluster:
    """Questions of one meaning that docent couldn't answer well."""

    representative: str  # the medoid question (redacted text)
    requests: int  # how often any of them was asked
    abstained: int
    unhelpful: int  # got 👎
    questions: tuple[str, ...]  # the distinct texts, most asked first (the representative included)
    channels: tuple[tuple[str | None, int], ...]  # (channel, requests), most first; None = a DM
    askers: tuple[str, ...]  # user ids, most frequent first (admins only: the report is admin-only)
    comments: tuple[str, ...]  # what 👎 voters said was wrong (redacted)
    last_asked: datetime


@dataclass(frozen=True)
class GapsReport:
    workspace: str
    channel: str | None  # None: every channel of the workspace
    days: int
    since: date
    until: date
    requests: int  # gap requests with text, grouped below
    clusters: tuple[GapCluster, ...]  # most asked first
    hashed: int = 0  # gap requests whose question is stored hashed (not grouped)
    truncated: bool = False  # more distinct questions than MAX_QUESTIONS: only the newest were grouped
    min_similarity: float = DEFAULT_MIN_SIMILARITY

    def to_dict(self) -> dict:
        d = asdict(self)
        d["since"], d["until"] = self.since.isoformat(), self.until.isoformat()
        for c in d["clusters"]:
            c["last_asked"] = c["last_asked"].isoformat()
            c["channels"] = [{"channel": ch, "requests": n} for ch, n in c["channels"]]
        return d

    @property
    def repeated(self) -> tuple[GapCluster, ...]:
        """Groups asked more than once: where a document would help most."""
        return tuple(c for c in self.clusters if c.requests > 1)

    def render_text(self, *, max_clusters: int = 10, channel_label: Callable[[str | None], str] | None = None) -> str:
        """Plain text for the terminal and chat (callers escape it for their platform)."""
        label = channel_label or (lambda ch: f"#{ch}" if ch else "DM")
        where = f" in {label(self.channel)}" if self.channel else ""
        head = (f"Coverage gaps{where}, {self.since:%Y-%m-%d} → {self.until:%Y-%m-%d} ({self.days} days): "
                f"{self.requests} question(s) docent abstained on or that got 👎, in {len(self.clusters)} group(s)")
        lines = [head]
        if self.hashed:
            lines.append(HASHED_NOTE.format(n=self.hashed))
        if not self.clusters:
            if not self.hashed:
                lines.append("Nothing to add: every question in the window was answered without a 👎.")
            return "\n".join(lines)
        for i, c in enumerate(self.clusters[:max_clusters], 1):
            why = ", ".join(bit for bit in (f"{c.abstained} abstained" if c.abstained else "",
                                            f"{c.unhelpful} 👎" if c.unhelpful else "") if bit)
            lines.append(f"{i:>2}. {c.requests}× “{c.representative}” ({why})")
            lines.append("    channels: " + ", ".join(f"{label(ch)} ×{n}" for ch, n in c.channels))
            others = [q for q in c.questions if q != c.representative][:SHOWN_EXAMPLES]
            if others:
                lines.append("    also: " + "; ".join(f"“{q}”" for q in others))
            for comment in c.comments[:SHOWN_COMMENTS]:
                lines.append(f"    said: “{comment}”")
            if c.askers:
                lines.append("    asked by: " + ", ".join(c.askers[:10]) + (" …" if len(c.askers) > 10 else ""))
        rest = self.clusters[max_clusters:]
        if rest:
            lines.append(f"… and {len(rest)} more group(s) with {sum(c.requests for c in rest)} question(s).")
        if self.truncated:
            lines.append(f"(Only the newest {MAX_QUESTIONS} distinct questions were grouped; try fewer --days.)")
        return "\n".join(lines)


@dataclass(frozen=True)
class _GapRequest:
    request_id: str
    ts: datetime
    channel: str | None
    user: str
    question: str
    abstained: bool
    unhelpful: bool


@dataclass
class _Distinct:
    """One distinct question text and the requests that asked it."""

    text: str
    requests: list[_GapRequest] = field(default_factory=list)


def _key(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(" ?!.")


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def gap_requests(db: Database, workspace: str, *, since: date, channel: str | None = None,
                 limit: int = MAX_ROWS) -> list[_GapRequest]:
    """The window's abstentions and 👎 answers, newest first."""
    t = RequestRecord.__table__.c
    f = Feedback.__table__.c
    voted_down = exists().where(f.request_id == t.request_id, f.helpful.is_(False))
    q = (
        select(t.request_id, t.ts, t.channel, t.user, t.question, t.outcome, voted_down.label("unhelpful"))
        .where(t.workspace == workspace, t.day >= since, or_(t.outcome == GAP_OUTCOME, voted_down))
        .order_by(t.ts.desc(), t.id.desc())
        .limit(limit)
    )
    if channel is not None:
        q = q.where(t.channel == channel)
    with db.session() as session:
        return [
            _GapRequest(r.request_id, _aware(r.ts), r.channel, r.user, r.question or "", r.outcome == GAP_OUTCOME,
                        bool(r.unhelpful))
            for r in session.execute(q)
        ]


def _comments(db: Database, request_ids: set[str]) -> dict[str, list[str]]:
    """request id → the comments of its current 👎 votes."""
    if not request_ids:
        return {}
    f = Feedback.__table__.c
    out: dict[str, list[str]] = {}
    ids = sorted(request_ids)
    with db.session() as session:
        for start in range(0, len(ids), 500):  # stay far below any database's parameter limit
            rows = session.execute(
                select(f.request_id, f.comment).where(f.request_id.in_(ids[start:start + 500]),
                                                      f.helpful.is_(False), f.comment.is_not(None))
                .order_by(f.ts.desc())
            )
            for request_id, comment in rows:
                out.setdefault(request_id, []).append(comment)
    return out


def cluster_labels(vectors: np.ndarray, min_similarity: float) -> np.ndarray:
    """Average-linkage clusters of unit vectors whose mean pairwise cosine stays ≥ `min_similarity`."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    v = np.asarray(vectors, dtype=np.float64)
    distances = np.clip(1.0 - v @ v.T, 0.0, 2.0)  # cosine distance of unit vectors
    np.fill_diagonal(distances, 0.0)
    tree = linkage(squareform(distances, checks=False), method="average")
    return fcluster(tree, t=1.0 - min_similarity, criterion="distance") - 1


def _medoid(vectors: np.ndarray, weights: np.ndarray) -> int:
    """The member with the highest request-weighted similarity to the whole cluster."""
    return int(np.argmax((vectors @ vectors.T) @ weights))


def find_gaps(
    db: Database,
    embedder: "Embedder",
    workspace: str,
    *,
    days: int = 30,
    channel: str | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    today: date | None = None,
) -> GapsReport:
    until = today or datetime.now(timezone.utc).date()
    since = until - timedelta(days=max(1, days) - 1)
    rows = gap_requests(db, workspace, since=since, channel=channel)
    with_text = [r for r in rows if r.question.strip() and not _HASHED.fullmatch(r.question)]
    hashed = sum(1 for r in rows if _HASHED.fullmatch(r.question))

    distinct: dict[str, _Distinct] = {}
    for r in with_text:  # newest first: the first text seen of a key is its newest wording
        distinct.setdefault(_key(r.question), _Distinct(r.question.strip())).requests.append(r)
    groups = list(distinct.values())
    truncated = len(groups) > MAX_QUESTIONS
    groups = groups[:MAX_QUESTIONS]
    kept = [r for g in groups for r in g.requests]

    vectors = embedder.embed_array([g.text for g in groups]) if groups else np.zeros((0, 1), dtype=np.float32)
    labels = cluster_labels(vectors, min_similarity)
    comments = _comments(db, {r.request_id for r in kept if r.unhelpful})

    clusters: list[GapCluster] = []
    for label in np.unique(labels):
        members = [i for i in range(len(groups)) if labels[i] == label]
        weights = np.array([len(groups[i].requests) for i in members], dtype=np.float64)
        medoid = members[_medoid(vectors[members], weights)]
        requests = [r for i in members for r in groups[i].requests]
        by_count = sorted(members, key=lambda i: (-len(groups[i].requests), groups[i].text))
        channels = Counter(r.channel for r in requests)
        askers = Counter(r.user for r in requests)
        said = [c for r in sorted(requests, key=lambda r: r.ts, reverse=True) for c in comments.get(r.request_id, ())]
        clusters.append(GapCluster(
            representative=groups[medoid].text,
            requests=len(requests),
            abstained=sum(r.abstained for r in requests),
            unhelpful=sum(r.unhelpful for r in requests),
            questions=tuple(groups[i].text for i in by_count),
            channels=tuple(sorted(channels.items(), key=lambda kv: (-kv[1], kv[0] or ""))),
            askers=tuple(u for u, _ in sorted(askers.items(), key=lambda kv: (-kv[1], kv[0]))),
            comments=tuple(dict.fromkeys(said)),
            last_asked=max(r.ts for r in requests),
        ))
    clusters.sort(key=lambda c: (-c.requests, -c.last_asked.timestamp(), c.representative))
    return GapsReport(workspace=workspace, channel=channel, days=days, since=since, until=until,
                      requests=len(kept), clusters=tuple(clusters), hashed=hashed, truncated=truncated,
                      min_similarity=min_similarity)
