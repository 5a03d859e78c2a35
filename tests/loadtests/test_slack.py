"""The acceptance load tests at small scale: separate `run_http` bot processes, real Redis."""

from __future__ import annotations

import pytest

from tests.loadtests.slack import measure_ack_latency, measure_duplicate_answers


@pytest.mark.redis
def test_two_processes_sharing_redis_answer_each_redelivered_event_once(redis_url):
    result = measure_duplicate_answers(redis_url, events=30, max_copies=4, processes=2, settle_s=1.0)
    assert result.deliveries > result.events  # there really were redeliveries …
    assert set(result.deliveries_per_process) == {"0", "1"}  # … spread over both processes
    assert result.duplicate_answers == 0
    assert result.missing_answers == 0


def test_acks_do_not_wait_for_a_slow_model():
    result = measure_ack_latency(mentions=5, llm_delay_s=2.5)
    assert result.statuses == {200: 5}
    assert result.answered_before_last_ack == 0  # every ack came back while the model still slept
    assert result.answered == 5  # and every answer arrived afterwards
