"""The ledger: totals equal the sum of request rows to the cent, idempotent on request id."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from admin.ledger import LedgerEntry, UsageLedger
from admin.models import DailyUserTotal, RequestRecord, to_micro


def _entry(i: int, rng: random.Random, **kw) -> LedgerEntry:
    base = dict(
        request_id=f"req-{i}", platform=rng.choice(["slack", "discord", "cli"]), workspace=rng.choice(["T1", "T2"]),
        channel=rng.choice(["C1", "C2", None]), user=rng.choice(["U1", "U2", "U3"]),
        outcome=rng.choice(["answered", "abstained", "error"]), model="claude-haiku-4-5",
        input_tokens=rng.randint(0, 2000), output_tokens=rng.randint(0, 600),
        # Awkward binary fractions on purpose: 0.1 + 0.2 style sums must still be exact.
        cost_usd=round(rng.uniform(0, 0.05), rng.choice([2, 4, 6])),
    )
    base.update(kw)
    return LedgerEntry(**base)


def test_totals_equal_sum_of_random_costs_to_the_cent(db):
    rng = random.Random(5)
    ledger = UsageLedger(db)
    entries = [_entry(i, rng) for i in range(400)]
    for e in entries:
        ledger.record(e)

    expected = sum(Decimal(str(e.cost_usd)) for e in entries)
    totals = ledger.totals()
    assert totals.requests == 400
    assert Decimal(totals.cost_microusd) / 1_000_000 == expected  # exact, not merely to the cent
    assert round(totals.cost_usd, 2) == round(float(expected), 2)
    assert totals.input_tokens == sum(e.input_tokens for e in entries)

    # The per-user daily totals agree with the rows, per workspace and per user.
    for ws in ("T1", "T2"):
        for user in ("U1", "U2", "U3"):
            rows = [e for e in entries if e.workspace == ws and e.user == user]
            daily = ledger.daily_totals(ws, user=user)
            assert daily.requests == len(rows)
            assert daily.cost_microusd == sum(to_micro(e.cost_usd) for e in rows)
    with db.session() as s:
        row_sum = s.execute(select(func.sum(RequestRecord.cost_microusd))).scalar()
        total_sum = s.execute(select(func.sum(DailyUserTotal.cost_microusd))).scalar()
    assert row_sum == total_sum


def test_record_is_idempotent_on_request_id(db):
    ledger = UsageLedger(db)
    e = LedgerEntry("dup", "slack", "T1", "C1", "U1", "answered", cost_usd=0.25, input_tokens=10)
    assert ledger.record(e) is True
    assert ledger.record(e) is False
    t = ledger.totals("T1")
    assert (t.requests, t.cost_microusd, t.input_tokens) == (1, 250_000, 10)
    assert ledger.daily_totals("T1").requests == 1


def test_concurrent_writers_lose_nothing(db):
    ledger = UsageLedger(db)
    rng = random.Random(7)
    entries = [_entry(i, rng, workspace="T1", user="U1") for i in range(120)]
    # Every entry twice, from different threads: redeliveries must not double count.
    work = entries + entries[::-1]
    chunks = [work[i::6] for i in range(6)]
    threads = [threading.Thread(target=lambda c=c: [ledger.record(e) for e in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sum(to_micro(e.cost_usd) for e in entries)
    assert ledger.totals("T1").cost_microusd == expected
    assert ledger.daily_totals("T1", user="U1").cost_microusd == expected
    assert ledger.daily_totals("T1", user="U1").requests == 120


def test_spent_today_counts_only_today_and_that_workspace(db):
    ledger = UsageLedger(db)
    now = datetime.now(timezone.utc)
    ledger.record(LedgerEntry("a", "cli", "T1", None, "U1", "answered", cost_usd=0.10, ts=now))
    ledger.record(LedgerEntry("b", "cli", "T1", None, "U2", "answered", cost_usd=0.20, ts=now))
    ledger.record(LedgerEntry("c", "cli", "T1", None, "U1", "answered", cost_usd=5.00, ts=now - timedelta(days=1)))
    ledger.record(LedgerEntry("d", "cli", "T2", None, "U1", "answered", cost_usd=7.00, ts=now))
    assert ledger.spent_today("T1", "U1") == 0.10
    assert ledger.spent_today("T1") == 0.30
    assert ledger.spent_today("T3") == 0.0


def _record_in_child(url: str, ids: list[int], start, results) -> None:
    from admin.db import Database

    ledger = UsageLedger(Database(url))
    start.wait()
    for i in ids:
        ledger.record(LedgerEntry(f"p-{i}", "slack", "T1", "C1", f"U{i % 3}", "answered",
                                  cost_usd=(i % 97) / 1000 + 0.000123))
    results.put(len(ids))


def test_two_processes_writing_one_database(db):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    # Half the ids overlap: both processes "receive" the same redelivered requests.
    id_sets = [list(range(0, 150)), list(range(75, 225))]
    procs = [ctx.Process(target=_record_in_child, args=(db.url, ids, start, results)) for ids in id_sets]
    for p in procs:
        p.start()
    assert sorted(results.get(timeout=120) for _ in procs) == [150, 150]
    for p in procs:
        p.join(timeout=30)
    expected = sum(to_micro((i % 97) / 1000 + 0.000123) for i in range(225))
    ledger = UsageLedger(db)
    assert ledger.totals().requests == 225
    assert ledger.totals().cost_microusd == expected == ledger.daily_totals().cost_microusd
