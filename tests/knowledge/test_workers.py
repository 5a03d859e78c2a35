"""The time-limited worker processes PDF parsing runs in, with stdlib functions as jobs."""

from __future__ import annotations

import logging
import operator
import os
import time

import pytest

from knowledge.loaders.pdf import parse_pdf
from knowledge.loaders.workers import WorkerCrashed, WorkerPool, WorkerTimeout, WorkerUnavailable
from knowledge.types import CorruptDocument


def _log_noise(times: int) -> None:  # a job: the worker imports it from this module
    for i in range(times):
        logging.getLogger("noisy").warning("noise %d", i)


@pytest.fixture(scope="module")
def pool():
    workers = WorkerPool(max_workers=1)
    yield workers
    workers.close()


def test_a_job_runs_in_another_process_that_is_reused(pool):
    first = pool.run(os.getpid, timeout_s=10)
    assert first != os.getpid()
    assert pool.run(os.getpid, timeout_s=10) == first
    assert pool.run(operator.add, 2, 3, timeout_s=10) == 5


def test_exceptions_come_back_with_their_type_and_message(pool):
    with pytest.raises(ZeroDivisionError) as division:
        pool.run(operator.truediv, 1, 0, timeout_s=10)
    assert "raised in the parse worker" in division.value.__notes__[0]  # with the worker's stack
    # DocumentError keeps the file name and the user-facing detail across the process boundary.
    with pytest.raises(CorruptDocument) as err:
        pool.run(parse_pdf, "bad.pdf", b"%PDF-1.7\nnot really", 10, 10, timeout_s=10)
    assert err.value.name == "bad.pdf" and str(err.value).startswith("bad.pdf: the PDF is damaged")
    before = pool.run(os.getpid, timeout_s=10)
    assert pool.run(os.getpid, timeout_s=10) == before  # a job that raised doesn't cost the worker


def test_a_job_past_its_deadline_is_killed_and_the_next_job_gets_a_fresh_worker(pool):
    before = pool.run(os.getpid, timeout_s=10)
    started = time.monotonic()
    with pytest.raises(WorkerTimeout):
        pool.run(time.sleep, 30, timeout_s=0.5)
    assert time.monotonic() - started < 3
    after = pool.run(os.getpid, timeout_s=10)
    assert after != before
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)  # the old worker is gone, not left sleeping


def test_a_worker_that_dies_mid_job_is_reported_and_replaced(pool):
    with pytest.raises(WorkerCrashed):
        pool.run(os._exit, 3, timeout_s=10)
    assert pool.run(operator.mul, 6, 7, timeout_s=10) == 42


def test_worker_log_records_reach_the_parents_logging_bounded(pool, caplog):
    caplog.set_level(logging.INFO)
    pool.run(logging.warning, "from the worker", timeout_s=10)
    assert any(r.levelno == logging.WARNING and r.getMessage() == "from the worker" for r in caplog.records)
    caplog.clear()
    # A job that logs thousands of times forwards a bounded number of records and a count.
    pool.run(_log_noise, 5000, timeout_s=10)
    messages = [r.getMessage() for r in caplog.records]
    assert 0 < len(messages) <= 25
    assert any("more log records from the worker dropped" in m for m in messages)


def test_close_kills_the_idle_workers():
    workers = WorkerPool(max_workers=1)
    pid = workers.run(os.getpid, timeout_s=10)
    workers.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_worker_that_cannot_start_is_a_fault_of_the_machine_not_of_the_job():
    workers = WorkerPool(preload=("docent_no_such_module",))
    with pytest.raises(WorkerUnavailable, match="died while starting"):
        workers.run(os.getpid, timeout_s=10)
