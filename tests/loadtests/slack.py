"""Load tests for the Slack connector: `python -m tests.loadtests slack` runs `run_slack_bench`.

Both run the real Bolt app over signed HTTP on loopback against the fake Slack Web API in
`tests/fakes/slack_api.py` (so they run from a source checkout, never against real Slack):

- `measure_ack_latency`: N concurrent @mentions while the chat model takes `llm_delay_s` per
  answer; the HTTP round trip of each event is its ack latency (Slack wants < 3 s).
- `measure_duplicate_answers`: each of N events delivered 1–4 times concurrently, spread over
  several `run_http` bot processes sharing one Redis; answers are counted per event at the fake.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.fakes.chat_model import FakeChatModel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEAM_CHANNEL = "C0BENCH"
BENCH_DOC = (
    "# Travel policy\n\nTrain travel is first class for trips longer than four hours. "
    "Hotel bookings go through the travel desk at least a week ahead.\n"
)
BENCH_QUESTION = "Which class is train travel for trips longer than four hours?"


def _fake_slack():
    from tests.fakes import slack_api

    return slack_api


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _bench_settings(data_dir: Path, **updates):
    """Settings for the process that seeds the bench's data dir (the bot processes read the
    same values from their environment, see `_spawn_bot`)."""
    from pydantic import SecretStr

    slack_api = _fake_slack()
    fields = {
        "data_dir": data_dir,
        "embedder": "hash",
        "slack_bot_token": SecretStr(slack_api.BOT_TOKEN),
        "slack_signing_secret": SecretStr(slack_api.SIGNING_SECRET),
        "rate_limit_user": "100000/minute",
        "rate_limit_channel": "100000/minute",
        "rate_limit_workspace": "100000/hour",
        "user_daily_cap_usd": 1_000_000.0,
        "workspace_daily_cap_usd": 1_000_000.0,
        "llm_timeout_s": 600.0,
        # Never touch a real deployment's services from a benchmark.
        "database_url": None,
        "qdrant_url": None,
        "redis_url": None,
        "anthropic_api_key": None,
        **updates,
    }
    from bot.settings import Settings

    return Settings(_env_file=None, **fields)


# === ack latency ========================================================================================
@dataclass(frozen=True)
class AckLatencyResult:
    mentions: int
    llm_delay_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    answered_before_last_ack: int  # > 0 would mean acks waited for the model
    answered: int
    cores: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_ack_latency(*, mentions: int = 20, llm_delay_s: float = 30.0) -> AckLatencyResult:
    """Fire `mentions` concurrent signed @mentions at a `run_http` bot process whose model takes
    `llm_delay_s` per answer; each HTTP round trip is that event's ack latency. The bot runs in
    its own process, as in production, so the load generator and fake Slack don't share its GIL."""
    slack_api = _fake_slack()
    from admin.types import Actor
    from bot.core import Docent
    from knowledge.types import Scope

    with tempfile.TemporaryDirectory(prefix="docent-bench-slack-") as tmp, slack_api.FakeSlackApi() as fake:
        data_dir = Path(tmp) / "data"
        seeding = Docent.from_settings(_bench_settings(data_dir, slack_api_url=fake.api_url))
        try:  # a document the question matches, so every answer really waits for the model
            seeding.admin.upload(
                Actor("slack", slack_api.TEAM_ID, "U0BENCHADMIN", is_platform_admin=True),
                "travel.md", BENCH_DOC.encode(), Scope(slack_api.TEAM_ID, TEAM_CHANNEL),
            )
        finally:
            seeding.close()
        port = _free_port()
        proc = _spawn_bot(port, fake, data_dir, extra_env={
            "DOCENT_BENCH_LLM_DELAY_S": str(llm_delay_s),
            "DOCENT_BENCH_ANSWER_WORKERS": str(max(8, mentions)),
        })
        try:
            _wait_healthy(port, proc)
            url = f"http://127.0.0.1:{port}/slack/events"
            bodies = [
                json.dumps(slack_api.event_body(
                    slack_api.mention_event(BENCH_QUESTION, user=f"U0B{i:04d}", channel=TEAM_CHANNEL,
                                            ts=f"1800000000.{i:06d}"),
                    event_id=f"EvAck{uuid.uuid4().hex[:12]}",
                ))
                for i in range(mentions)
            ]
            start = threading.Barrier(mentions)

            def send(payload: str) -> tuple[int, float]:
                start.wait()
                t0 = time.perf_counter()
                status, _ = slack_api.post_signed(url, payload, timeout_s=60)
                return status, (time.perf_counter() - t0) * 1000

            with ThreadPoolExecutor(max_workers=mentions) as pool:
                results = list(pool.map(send, bodies))
            answered_early = _final_answers(fake, TEAM_CHANNEL)
            answered = answered_early
            deadline = time.monotonic() + llm_delay_s * 2 + 60
            while answered < mentions and time.monotonic() < deadline:
                time.sleep(0.5)
                answered = _final_answers(fake, TEAM_CHANNEL)
        finally:
            _stop(proc)
    latencies = [ms for _, ms in results]
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return AckLatencyResult(
        mentions=mentions,
        llm_delay_s=llm_delay_s,
        p50_ms=round(statistics.median(latencies), 1),
        p99_ms=round(_percentile(latencies, 99), 1),
        max_ms=round(max(latencies), 1),
        statuses=statuses,
        answered_before_last_ack=answered_early,
        answered=answered,
        cores=os.cpu_count() or 0,
    )


def _final_answers(fake, channel: str) -> int:
    """Placeholders replaced by a final answer (an update without the 'writing…' note)."""
    done = set()
    for call in fake.calls("chat.update"):
        if call.params.get("channel") == channel and "writing" not in json.dumps(call.params.get("blocks") or []):
            done.add(call.params.get("ts"))
    return len(done)


# === duplicates across processes ========================================================================
@dataclass(frozen=True)
class DuplicateResult:
    events: int
    deliveries: int
    processes: int
    answered_events: int
    duplicate_answers: int  # extra answers beyond one per event, summed
    missing_answers: int
    deliveries_per_process: dict[str, int]
    seconds: float
    cores: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bot process exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"bot process on port {port} never became healthy")


def _spawn_bot(port: int, fake, data_dir: Path, *, extra_env: dict[str, str]) -> subprocess.Popen:
    """`python -m tests.loadtests.slack serve PORT`: a real `run_http` bot on loopback."""
    slack_api = _fake_slack()
    env = {
        **os.environ,
        "DOCENT_DATA_DIR": str(data_dir),
        "DOCENT_EMBEDDER": "hash",
        "DOCENT_SLACK_API_URL": fake.api_url,
        "SLACK_BOT_TOKEN": slack_api.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": slack_api.SIGNING_SECRET,
        "DOCENT_RATE_LIMIT_USER": "100000/minute",
        "DOCENT_RATE_LIMIT_CHANNEL": "100000/minute",
        "DOCENT_RATE_LIMIT_WORKSPACE": "100000/hour",
        "DOCENT_LLM_TIMEOUT_S": "600",
        "DOCENT_OPS_PORT": "0",  # several bots on one host: each its own free ops port
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    for var in ("ANTHROPIC_API_KEY", "DATABASE_URL", "QDRANT_URL", "REDIS_URL"):
        env.pop(var, None)
    env.update(extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.loadtests.slack", "serve", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # SIGTERM: run_http drains in-flight answers, then exits
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure_duplicate_answers(
    redis_url: str,
    *,
    events: int = 200,
    max_copies: int = 4,
    processes: int = 2,
    seed: int = 7,
    settle_s: float = 3.0,
) -> DuplicateResult:
    """Deliver each of `events` mentions 1..max_copies times, concurrently, spread over
    `processes` separate `run_http` bots sharing `redis_url`; count answers per event."""
    slack_api = _fake_slack()
    rng = random.Random(seed)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="docent-bench-dedupe-") as tmp, slack_api.FakeSlackApi() as fake:
        ports = [_free_port() for _ in range(processes)]
        try:
            for i, port in enumerate(ports):
                # Each process has its own store; they share only Redis (and the fake Slack).
                procs.append(_spawn_bot(port, fake, Path(tmp) / f"bot{i}", extra_env={"REDIS_URL": redis_url}))
            for port, proc in zip(ports, procs):
                _wait_healthy(port, proc)

            run = uuid.uuid4().hex[:10]  # fresh event ids: Redis remembers earlier runs' claims
            deliveries: list[tuple[str, int, int]] = []  # (body json, retry number, process index)
            thread_ts: list[str] = []
            for n in range(events):
                ts = f"1800{n:06d}.000100"
                thread_ts.append(ts)
                body = json.dumps(slack_api.event_body(
                    slack_api.mention_event(f"Question number {n} about travel?", user=f"U0D{n % 50:03d}",
                                            channel=TEAM_CHANNEL, ts=ts),
                    event_id=f"EvDup{run}{n:05d}",
                ))
                for copy in range(rng.randint(1, max_copies)):
                    deliveries.append((body, copy, rng.randrange(processes)))
            rng.shuffle(deliveries)
            per_process: dict[str, int] = {}
            for _, _, p in deliveries:
                per_process[str(p)] = per_process.get(str(p), 0) + 1

            def deliver(item: tuple[str, int, int]) -> int:
                body, retry, p = item
                url = f"http://127.0.0.1:{ports[p]}/slack/events"
                status, _ = slack_api.post_signed(url, body, retry_num=retry or None, timeout_s=60)
                return status

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=32) as pool:
                statuses = list(pool.map(deliver, deliveries))
            if any(s != 200 for s in statuses):
                raise RuntimeError(f"some deliveries failed: {sorted(set(statuses))}")

            def answers_per_thread() -> dict[str, int]:
                counts = {ts: 0 for ts in thread_ts}
                for call in fake.calls("chat.postMessage"):
                    ts = call.params.get("thread_ts")
                    if ts in counts and call.params.get("text") == "Looking through the documents…":
                        counts[ts] += 1
                return counts

            deadline = time.monotonic() + 300
            last_total, quiet_since = -1, time.monotonic()
            while time.monotonic() < deadline:
                answered = _final_answers(fake, TEAM_CHANNEL)
                total = len(fake.calls())
                if total != last_total:
                    last_total, quiet_since = total, time.monotonic()
                if answered >= events and time.monotonic() - quiet_since >= settle_s:
                    break
                time.sleep(0.2)
            seconds = time.perf_counter() - t0
            counts = answers_per_thread()
        finally:
            for proc in procs:
                _stop(proc)
    return DuplicateResult(
        events=events,
        deliveries=len(deliveries),
        processes=processes,
        answered_events=sum(1 for c in counts.values() if c >= 1),
        duplicate_answers=sum(max(0, c - 1) for c in counts.values()),
        missing_answers=sum(1 for c in counts.values() if c == 0),
        deliveries_per_process=per_process,
        seconds=round(seconds, 2),
        cores=os.cpu_count() or 0,
    )


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def run_slack_bench(
    settings=None, *, mentions: int = 20, llm_delay_s: float = 30.0, events: int = 200, processes: int = 2
) -> dict[str, Any]:
    """Both acceptance measurements as one flat result for `python -m tests.loadtests slack`.

    The duplicate test needs a Redis (settings.redis_url, else REDIS_URL, else localhost); without
    one it is reported as skipped rather than measured against something else.
    """
    ack = measure_ack_latency(mentions=mentions, llm_delay_s=llm_delay_s)
    result: dict[str, Any] = {
        "cores": ack.cores,
        "ack_mentions": ack.mentions,
        "ack_llm_delay_s": ack.llm_delay_s,
        "ack_p50_ms": ack.p50_ms,
        "ack_p99_ms": ack.p99_ms,
        "ack_max_ms": ack.max_ms,
        "ack_statuses": ack.statuses,
        "ack_answered_before_last_ack": ack.answered_before_last_ack,
        "ack_answered": ack.answered,
    }
    redis_url = (settings.redis_url if settings is not None else None) or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as err:
        result["dedupe"] = f"skipped: Redis not reachable at {redis_url} ({type(err).__name__})"
        return result
    dup = measure_duplicate_answers(redis_url, events=events, processes=processes)
    result.update({
        "dedupe_events": dup.events,
        "dedupe_deliveries": dup.deliveries,
        "dedupe_processes": dup.processes,
        "dedupe_deliveries_per_process": dup.deliveries_per_process,
        "dedupe_answered_events": dup.answered_events,
        "dedupe_duplicate_answers": dup.duplicate_answers,
        "dedupe_missing_answers": dup.missing_answers,
        "dedupe_seconds": dup.seconds,
    })
    return result


def _serve(port: int) -> None:
    """One bot process for `measure_duplicate_answers` (settings from the environment)."""
    import logging

    from bot.core import Docent
    from bot.settings import Settings
    from connectors.slack.app import run_http

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(_env_file=None)
    delay = os.environ.get("DOCENT_BENCH_LLM_DELAY_S")
    docent = Docent.from_settings(settings, chat_model=FakeChatModel(reply="Train travel is first class for trips longer than four hours [1].", delay_s=float(delay)) if delay else None)
    workers = int(os.environ.get("DOCENT_BENCH_ANSWER_WORKERS", "8"))
    try:
        run_http(docent, settings, port, host="127.0.0.1", answer_workers=workers)
    finally:
        docent.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]))
    else:
        print("usage: python -m tests.loadtests.slack serve PORT", file=sys.stderr)
        sys.exit(2)
