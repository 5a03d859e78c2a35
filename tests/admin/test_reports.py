"""Usage reports match figures computed by hand from a small, known ledger; the chart is a PNG."""

from __future__ import annotations

import json
import struct
from datetime import datetime, time, timedelta, timezone

import pytest

from admin.ledger import LedgerEntry, UsageLedger
from admin.reports import build_usage_report, render_usage_chart, usage_figure

TODAY = datetime(2026, 3, 10, tzinfo=timezone.utc).date()


def _at(days_ago: int) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(12), tzinfo=timezone.utc)


@pytest.fixture
def ledger(db):
    ledger = UsageLedger(db)
    rows = [
        # id, days ago, user, channel, outcome, in, out, cost, cache hit
        ("r1", 0, "alice", "C1", "answered", 1000, 200, 0.0120, False),
        ("r2", 0, "alice", "C1", "answered", 0, 0, 0.0, True),
        ("r3", 0, "bob", "C2", "blocked", 0, 0, 0.0, False),
        ("r4", 1, "bob", "C2", "answered", 1500, 300, 0.0185, False),
        ("r5", 1, "carol", None, "abstained", 800, 50, 0.0042, False),
        ("r6", 2, "alice", "C1", "rate_limited", 0, 0, 0.0, False),
        ("r7", 2, "alice", "C2", "capped", 0, 0, 0.0, False),
        ("r8", 6, "bob", "C1", "error", 900, 0, 0.0009, False),
        ("r9", 7, "alice", "C1", "answered", 5000, 500, 1.0, False),  # outside a 7-day window
        ("r10", 0, "dave", "C1", "answered", 10, 10, 3.0, False),  # other workspace
    ]
    for rid, ago, user, ch, outcome, i, o, cost, hit in rows:
        ledger.record(LedgerEntry(rid, "slack", "T9" if rid == "r10" else "T1", ch, user, outcome,
                                  input_tokens=i, output_tokens=o, cost_usd=cost, cache_hit=hit, ts=_at(ago)))
    return ledger


def test_workspace_report_matches_hand_computed_figures(db, ledger):
    r = build_usage_report(db, "T1", days=7, today=TODAY)
    # r1..r8 are in the window (r9 is 7 days ago; r10 is another workspace).
    assert r.requests == 8
    assert (r.input_tokens, r.output_tokens) == (1000 + 1500 + 800 + 900, 200 + 300 + 50)
    assert r.cost_usd == pytest.approx(0.0120 + 0.0185 + 0.0042 + 0.0009, abs=1e-9)
    assert round(r.cost_usd, 4) == 0.0356
    assert r.outcomes == {"answered": 3, "abstained": 1, "rate_limited": 1, "capped": 1, "blocked": 1, "error": 1}
    assert r.blocks == 1
    assert r.cache_hits == 1
    assert r.cache_hit_rate == pytest.approx(1 / 4)  # one hit among answered + abstained
    assert r.projected_monthly_cost_usd == pytest.approx(0.0356 / 7 * 30, abs=1e-6)

    users = {u.key: u for u in r.per_user}
    assert users["alice"].requests == 4 and users["alice"].cost_usd == pytest.approx(0.0120)
    assert users["bob"].requests == 3 and users["bob"].cost_usd == pytest.approx(0.0194) and users["bob"].blocks == 1
    assert users["carol"].requests == 1
    assert [u.key for u in r.top_users] == ["bob", "alice", "carol"]

    channels = {c.key: c.requests for c in r.per_channel}
    assert channels == {"C1": 4, "C2": 3, "(direct message)": 1}

    assert len(r.per_day) == 7 and r.per_day[0].key == "2026-03-04" and r.per_day[-1].key == "2026-03-10"
    per_day = {d.key: (d.requests, round(d.cost_usd, 4)) for d in r.per_day}
    assert per_day["2026-03-10"] == (3, 0.012)
    assert per_day["2026-03-09"] == (2, 0.0227)
    assert per_day["2026-03-08"] == (2, 0.0)
    assert per_day["2026-03-04"] == (1, 0.0009)
    assert per_day["2026-03-05"] == (0, 0.0)


def test_filters_by_user_and_channel(db, ledger):
    r = build_usage_report(db, "T1", user="alice", days=7, today=TODAY)
    assert r.requests == 4 and [u.key for u in r.per_user] == ["alice"]
    r = build_usage_report(db, "T1", channel="C2", days=7, today=TODAY)
    assert r.requests == 3 and {u.key for u in r.per_user} == {"alice", "bob"}
    r = build_usage_report(db, "T1", days=8, today=TODAY)
    assert r.requests == 9 and round(r.cost_usd, 4) == 1.0356


def test_to_dict_is_json_ready_and_text_is_compact(db, ledger):
    r = build_usage_report(db, "T1", days=7, today=TODAY)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["requests"] == 8 and d["since"] == "2026-03-04" and d["outcomes"]["blocked"] == 1
    assert d["per_user"][0]["key"] == "alice"
    text = r.render_text()
    assert "Requests: 8" in text and "$0.04" in text and "bob" in text
    assert len(text.splitlines()) <= 8


def test_empty_report_has_zero_days_and_no_division_error(db):
    r = build_usage_report(db, "nobody", days=3, today=TODAY)
    assert r.requests == 0 and r.cache_hit_rate == 0.0 and r.projected_monthly_cost_usd == 0.0
    assert [d.requests for d in r.per_day] == [0, 0, 0]
    with pytest.raises(ValueError):
        build_usage_report(db, "T1", days=0)


def test_usage_chart_is_a_png_of_sensible_size(db, ledger):
    png = render_usage_chart(build_usage_report(db, "T1", days=7, today=TODAY))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert (width, height) == (800, 500)
    assert len(png) > 5_000


def _title(fig):
    (title,) = [t for t in fig.texts if t.get_text().startswith("docent usage")]
    return title


def test_usage_chart_shows_requests_by_outcome_and_cost_per_day_with_a_literal_title(db, ledger):
    report = build_usage_report(db, "T1", days=7, today=TODAY)
    fig = usage_figure(report)
    fig.canvas.draw()
    requests_ax, cost_ax = fig.axes
    title = _title(fig)
    # Dollars are dollars: "$0.04 … $0.15" is shown as written, not typeset as TeX math.
    assert title.get_text() == ("docent usage — workspace T1 · 2026-03-04 → 2026-03-10\n"
                                "8 requests · $0.04 spent · projected $0.15/month")
    assert title.get_parse_math() is False
    assert requests_ax.get_ylabel() == "requests" and cost_ax.get_ylabel() == "cost (USD)"
    # Requests stacked by outcome: one bar series per outcome that occurred, summing per day.
    legend = [t.get_text() for t in requests_ax.get_legend().get_texts()]
    assert legend == ["answered", "abstained", "rate limited", "capped", "blocked", "error"]
    tops = [max(bar.get_y() + bar.get_height() for c in requests_ax.containers for bar in [c[i]])
            for i in range(7)]
    assert tops == [d.requests for d in report.per_day]
    assert [round(bar.get_height(), 4) for bar in cost_ax.containers[0]] == [round(d.cost_usd, 4)
                                                                               for d in report.per_day]
    for ax in (requests_ax, cost_ax):
        assert ax.get_ylim()[0] == 0


def test_empty_usage_chart_never_shows_negative_dollars(db):
    fig = usage_figure(build_usage_report(db, "nobody", days=7, today=TODAY, user="U$1$"))
    fig.canvas.draw()
    requests_ax, cost_ax = fig.axes
    assert "user U$1$" in _title(fig).get_text() and "$0.00 spent" in _title(fig).get_text()
    for ax in (requests_ax, cost_ax):
        low, high = ax.get_ylim()
        assert low == 0 and high > 0
    cost_labels = [t.get_text() for t in cost_ax.get_yticklabels() if t.get_text()]
    assert cost_labels and all(label.startswith("$") and "-" not in label and "−" not in label
                               for label in cost_labels)
    assert len(set(cost_labels)) == len(cost_labels)  # no two ticks read the same
    assert any(t.get_text() == "No requests in this period" for t in requests_ax.texts)
