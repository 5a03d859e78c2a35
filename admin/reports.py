"""Usage reports from the ledger: totals, outcomes, per user / channel / day, a usage chart.

All sums are over integer micro-dollars, converted to USD once at the end, so every figure
matches the request rows to the cent.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import select

from admin.db import Database
from admin.models import RequestRecord, from_micro

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTCOMES = ("answered", "abstained", "rate_limited", "capped", "blocked", "error")  # + "pending" while a call runs
# Chart colours per outcome: good news blue/grey, refusals warm, failures dark.
OUTCOME_COLOURS = {
    "answered": "#4C72B0", "abstained": "#A5B4C8", "rate_limited": "#DD8452", "capped": "#E5AE38",
    "blocked": "#C44E52", "error": "#55423D", "pending": "#CCCCCC",
}
COST_COLOUR = "#2A9D8F"


@dataclass(frozen=True)
class UsageRow:
    """Figures for one user, channel or day."""

    key: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    blocks: int = 0
    cache_hits: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # requests by outcome


@dataclass(frozen=True)
class UsageReport:
    workspace: str
    since: date
    until: date
    days: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    outcomes: dict[str, int]
    blocks: int  # requests refused by the injection guard
    cache_hits: int
    cache_hit_rate: float  # cache hits / requests that got an answer (answered + abstained)
    projected_monthly_cost_usd: float  # trailing daily average × 30
    per_user: tuple[UsageRow, ...]
    per_channel: tuple[UsageRow, ...]
    per_day: tuple[UsageRow, ...]  # every day of the window, oldest first, zero days included
    user: str | None = None
    channel: str | None = None
    top_users: tuple[UsageRow, ...] = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["since"] = self.since.isoformat()
        d["until"] = self.until.isoformat()
        return d

    def render_text(self, *, max_rows: int = 5) -> str:
        """A compact summary for chat and the terminal."""
        who = f" for {self.user}" if self.user else ""
        where = f" in {self.channel}" if self.channel else ""
        lines = [
            f"Usage{who}{where}, {self.since:%Y-%m-%d} → {self.until:%Y-%m-%d} ({self.days} days)",
            f"Requests: {self.requests} · tokens in/out: {self.input_tokens:,}/{self.output_tokens:,} "
            f"· cost: ${self.cost_usd:,.2f}",
            "Outcomes: " + ", ".join(f"{k} {v}" for k, v in self.outcomes.items() if v) if self.requests else "Outcomes: none",
            f"Cache hit rate: {self.cache_hit_rate:.0%} · blocked: {self.blocks} "
            f"· projected monthly: ${self.projected_monthly_cost_usd:,.2f}",
        ]
        if self.top_users and not self.user:
            lines.append("Top users: " + ", ".join(
                f"{r.key} ${r.cost_usd:,.2f} ({r.requests})" for r in self.top_users[:max_rows]))
        if len(self.per_channel) > 1 and not self.channel:
            lines.append("Top channels: " + ", ".join(
                f"{r.key} ${r.cost_usd:,.2f} ({r.requests})"
                for r in sorted(self.per_channel, key=lambda r: -r.cost_usd)[:max_rows]))
        return "\n".join(lines)


class _Acc:
    __slots__ = ("requests", "input_tokens", "output_tokens", "cost", "blocks", "cache_hits", "outcomes")

    def __init__(self) -> None:
        self.requests = self.input_tokens = self.output_tokens = self.cost = self.blocks = self.cache_hits = 0
        self.outcomes: dict[str, int] = defaultdict(int)

    def add(self, r) -> None:
        self.requests += 1
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        self.cost += r.cost_microusd
        self.blocks += r.outcome == "blocked"
        self.cache_hits += bool(r.cache_hit)
        self.outcomes[r.outcome] += 1

    def row(self, key: str) -> UsageRow:
        return UsageRow(key, self.requests, self.input_tokens, self.output_tokens, from_micro(self.cost),
                        self.blocks, self.cache_hits, dict(self.outcomes))


def build_usage_report(
    db: Database,
    workspace: str,
    *,
    user: str | None = None,
    channel: str | None = None,
    days: int = 30,
    today: date | None = None,
    top: int = 5,
) -> UsageReport:
    """Figures for the last `days` UTC days, today included."""
    if days < 1:
        raise ValueError("days must be at least 1")
    until = today or datetime.now(timezone.utc).date()
    since = until - timedelta(days=days - 1)
    t = RequestRecord.__table__.c
    q = select(t.user, t.channel, t.day, t.input_tokens, t.output_tokens, t.cost_microusd, t.outcome,
               t.cache_hit).where(t.workspace == workspace, t.day >= since, t.day <= until)
    if user is not None:
        q = q.where(t.user == user)
    if channel is not None:
        q = q.where(t.channel == channel)

    total = _Acc()
    outcomes = {k: 0 for k in OUTCOMES}
    by_user: dict[str, _Acc] = defaultdict(_Acc)
    by_channel: dict[str, _Acc] = defaultdict(_Acc)
    by_day: dict[date, _Acc] = defaultdict(_Acc)
    with db.session() as session:
        for r in session.execute(q):
            total.add(r)
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            by_user[r.user].add(r)
            by_channel[r.channel or "(direct message)"].add(r)
            by_day[r.day].add(r)

    answered = outcomes["answered"] + outcomes["abstained"]
    per_user = tuple(sorted((a.row(k) for k, a in by_user.items()), key=lambda r: (-r.requests, r.key)))
    per_day = tuple(by_day[since + timedelta(days=i)].row((since + timedelta(days=i)).isoformat())
                    for i in range(days))
    return UsageReport(
        workspace=workspace, since=since, until=until, days=days, user=user, channel=channel,
        requests=total.requests, input_tokens=total.input_tokens, output_tokens=total.output_tokens,
        cost_usd=from_micro(total.cost), outcomes=outcomes, blocks=total.blocks,
        cache_hits=total.cache_hits, cache_hit_rate=(total.cache_hits / answered) if answered else 0.0,
        # Integer µ$ until the last step: trailing average per day × 30.
        projected_monthly_cost_usd=from_micro(round(total.cost * 30 / days)),
        per_user=per_user,
        per_channel=tuple(sorted((a.row(k) for k, a in by_channel.items()), key=lambda r: (-r.requests, r.key))),
        per_day=per_day,
        top_users=tuple(sorted(per_user, key=lambda r: (-r.cost_usd, -r.requests, r.key))[:top]),
    )


def chart_title(report: UsageReport) -> str:
    """What the chart shows, for whom, and its totals — two lines, dollars written out."""
    who = "".join(
        (f" · user {report.user}" if report.user else "", f" · channel {report.channel}" if report.channel else "")
    )
    return (
        f"docent usage — workspace {report.workspace}{who} · {report.since:%Y-%m-%d} → {report.until:%Y-%m-%d}\n"
        f"{report.requests:,} requests · ${report.cost_usd:,.2f} spent · "
        f"projected ${report.projected_monthly_cost_usd:,.2f}/month"
    )


def usage_figure(report: UsageReport, *, width_in: float = 8.0, height_in: float = 5.0, dpi: int = 100) -> "Figure":
    """Requests per day stacked by outcome (top) and cost per day (bottom), over every day of
    the report. Uses a Figure on the Agg canvas directly: no pyplot state, thread-safe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    requests_ax, cost_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    days = range(len(report.per_day))

    bottom = [0] * len(report.per_day)
    for outcome in (*OUTCOMES, "pending"):
        counts = [r.outcomes.get(outcome, 0) for r in report.per_day]
        if any(counts):
            requests_ax.bar(days, counts, bottom=bottom, color=OUTCOME_COLOURS[outcome],
                            label=outcome.replace("_", " "), width=0.8)
            bottom = [b + c for b, c in zip(bottom, counts)]
    # Axes from zero, with room above the tallest bar; an empty period still gets a sane scale.
    requests_ax.set_ylim(0, max(max(bottom, default=0), 1) * 1.15)
    requests_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    requests_ax.set_ylabel("requests", parse_math=False)
    if any(bottom):
        # Above the plot, under the title: it never hides a bar.
        requests_ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncols=7,
                           borderaxespad=0.2, handlelength=1.2, columnspacing=1.2)
    else:
        requests_ax.text(0.5, 0.5, "No requests in this period", transform=requests_ax.transAxes,
                         ha="center", va="center", color="#777777", parse_math=False)

    costs = [r.cost_usd for r in report.per_day]
    cost_ax.bar(days, costs, color=COST_COLOUR, width=0.8)
    top = max(max(costs, default=0.0), 0.01) * 1.15
    cost_ax.set_ylim(0, top)
    locator = MaxNLocator(nbins=4)
    cost_ax.yaxis.set_major_locator(locator)
    ticks = locator.tick_values(0, top)
    # Cents, or as many decimals as the tick step needs so no two labels read the same.
    decimals = max(2, math.ceil(-math.log10(ticks[1] - ticks[0]))) if len(ticks) > 1 else 2
    cost_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:,.{decimals}f}"))  # one "$": no mathtext
    cost_ax.set_ylabel("cost (USD)", parse_math=False)

    labels = [r.key[5:] for r in report.per_day]  # MM-DD
    step = max(1, len(labels) // 10)
    cost_ax.set_xticks(list(days)[::step], labels[::step], rotation=45, ha="right", fontsize=8)
    cost_ax.set_xlim(-0.6, len(labels) - 0.4)
    for ax in (requests_ax, cost_ax):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.8)
        ax.set_axisbelow(True)
    # parse_math off: the title's "$" amounts are dollars, not TeX ("$0.00 … $3.00" would italicise).
    fig.suptitle(chart_title(report), fontsize=10, parse_math=False)
    fig.tight_layout()
    return fig


def render_usage_chart(report: UsageReport, **size) -> bytes:
    """The usage chart as PNG bytes."""
    buf = io.BytesIO()
    usage_figure(report, **size).savefig(buf, format="png")
    return buf.getvalue()
