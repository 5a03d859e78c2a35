"""`docent run` as users run it: one process (`python -m connectors.cli run`) serving Slack over
Socket Mode and Discord over its gateway together, against the loopback fakes, answering with
Claude (the fake Messages API); beside it, CLI processes ingest and list documents; then SIGTERM.

The process is started once for the module (its start-up is most of the cost).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, start_fake_anthropic
from tests.fakes.discord_api import ThreadedFakeDiscord, slash_command
from tests.fakes.slack_api import BOT_TOKEN, TEAM_ID, FakeSlackApi, event_body, mention_event
from tests.fakes.slack_socket_mode import APP_TOKEN, FakeSocketMode

PROJECT = Path(__file__).resolve().parents[2]
GUILD = 800_000_000_000_000_001
HANGAR = "# Zeppelin hangar\n\nThe zeppelin hangar door code is 4711 and the hangar closes at 22:00 on weekdays.\n"
QUESTION = "What is the zeppelin hangar door code?"


@dataclass
class Bot:
    proc: subprocess.Popen
    env: dict[str, str]
    cwd: Path
    ops: str
    slack: FakeSlackApi
    sm: FakeSocketMode
    discord: ThreadedFakeDiscord
    claude: FakeAnthropic

    def cli(self, *args: str) -> subprocess.Popen:
        """A second `docent` process on the same data dir."""
        return subprocess.Popen([sys.executable, "-m", "connectors.cli", *args], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def metrics(self) -> str:
        with urllib.request.urlopen(self.ops + "/metrics", timeout=5) as response:
            return response.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(bot_proc: subprocess.Popen, ops: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert bot_proc.poll() is None, f"docent run exited with {bot_proc.returncode}"
        try:
            with urllib.request.urlopen(ops + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError("docent run never became ready")


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    claude, claude_server, _thread = start_fake_anthropic()
    claude.default_text = "The zeppelin hangar door code is 4711 [1]."
    with FakeSocketMode() as sm, FakeSlackApi(socket_mode=sm) as slack, ThreadedFakeDiscord() as discord:
        ops = f"http://127.0.0.1:{_free_port()}"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "QDRANT_URL")}
        env.update({
            "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1",
            "DOCENT_DATA_DIR": str(tmp / "data"), "DOCENT_EMBEDDER": "hash", "DOCENT_RELEVANCE_THRESHOLD": "0.3",
            "DOCENT_OPS_PORT": ops.rsplit(":", 1)[1], "DOCENT_LOG_LEVEL": "WARNING",
            "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": claude.url,
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "DOCENT_SLACK_API_URL": slack.api_url,
            "DISCORD_TOKEN": "test-bot-token", "DOCENT_DISCORD_API_URL": discord.api.api_base,
        })
        proc = subprocess.Popen([sys.executable, "-m", "connectors.cli", "run"], cwd=tmp, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait_ready(proc, ops)
            yield Bot(proc, env, tmp, ops, slack, sm, discord, claude)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            claude._stopping.set()
            claude_server.shutdown()
            claude_server.server_close()


def _slack_answer(bot: Bot, ts: str, timeout_s: float = 20) -> str:
    """The final answer docent put in the thread of `ts` (its placeholder, updated)."""

    def final(calls):
        thread = bot.slack.thread_messages("C0GENERAL", ts)
        ours = {m["ts"] for m in thread if m.get("bot_id")}
        done = [c for c in calls if c.method == "chat.update" and c.params.get("ts") in ours
                and "writing" not in json.dumps(c.params.get("blocks"))]
        return done[-1].params if done else None

    return json.dumps(bot.slack.wait_for(final, timeout_s))


def _discord_answer(bot: Bot, payload: dict, timeout_s: float = 20) -> str:
    token = payload["token"]

    def final():
        for call in bot.discord.api.replies_for(token):
            embeds = (call.json or {}).get("embeds") or []
            if embeds and (embeds[-1].get("footer") or {}).get("text") != "writing…":
                return call
        return None

    bot.discord.wait_for(lambda: final() is not None, timeout_s)
    return json.dumps(final().json)


def _ask_discord(bot: Bot, text: str = QUESTION) -> dict:
    payload = slash_command("ask", [{"type": 3, "name": "question", "value": text}], guild_id=GUILD)
    bot.discord.dispatch("INTERACTION_CREATE", payload)
    return payload


def test_one_process_answers_both_platforms_while_the_cli_ingests_and_lists_beside_it(bot, tmp_path):
    # Before the document exists, both platforms answer — that they can't find it.
    sm_envelope = bot.sm.send_event(event_body(mention_event(QUESTION, ts="1700000100.000100")))
    assert bot.sm.ack_latency_s(sm_envelope) < 1.0
    assert "couldn't find" in _slack_answer(bot, "1700000100.000100")
    assert "couldn't find" in _discord_answer(bot, _ask_discord(bot))

    # Other processes add the document — one per platform's workspace — and list it, all at once.
    doc = tmp_path / "hangar.md"
    doc.write_text(HANGAR)
    slack_ingest = bot.cli("ingest", str(doc), "--scope", TEAM_ID)
    discord_ingest = bot.cli("ingest", str(doc), "--scope", str(GUILD))
    out, err = slack_ingest.communicate(timeout=30)
    assert slack_ingest.returncode == 0, err
    assert "1 of 1 documents ingested" in out and "ingesting hangar.md" in err  # with its progress bar
    listing = bot.cli("docs", "list", "--scope", TEAM_ID, "--json")  # while the other ingest may still run
    for proc in (discord_ingest, listing):
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    assert [d["name"] for d in json.loads(out)] == ["hangar.md"]

    # The running bot answers from it on both platforms.
    bot.sm.send_event(event_body(mention_event(QUESTION, ts="1700000200.000100")))
    slack_answer = _slack_answer(bot, "1700000200.000100")
    discord_answer = _discord_answer(bot, _ask_discord(bot, QUESTION + " (discord)"))
    for answer in (slack_answer, discord_answer):
        assert "4711" in answer and "Zeppelin hangar" in answer
    metrics = bot.metrics()
    assert 'docent_requests_total{outcome="answered",platform="slack"} 1.0' in metrics
    assert 'docent_requests_total{outcome="answered",platform="discord"} 1.0' in metrics
    assert 'docent_documents_total{outcome="ingested"} 2.0' in metrics


def test_sigterm_drains_in_flight_answers_on_both_platforms(bot):
    asked = len(bot.claude.requests)
    bot.claude.delay(2.0).delay(2.0)  # both answers are still being written when SIGTERM arrives
    bot.sm.send_event(event_body(mention_event(QUESTION + " Again?", ts="1700000300.000100")))
    payload = _ask_discord(bot, QUESTION + " Once more?")
    deadline = time.monotonic() + 10
    while len(bot.claude.requests) < asked + 2:
        assert time.monotonic() < deadline, "the questions never reached the model"
        time.sleep(0.05)
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.proc.wait(30) == 0
    assert "4711" in _slack_answer(bot, "1700000300.000100", timeout_s=1)
    assert "4711" in _discord_answer(bot, payload, timeout_s=1)


def test_run_without_any_platform_credentials_says_what_to_set(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from connectors.cli import app

    for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert "\n" not in line and "SLACK_APP_TOKEN" in line and "DISCORD_TOKEN" in line
    assert not (tmp_path / "data" / "holder.json").exists()  # the data dir was let go


def test_a_platform_that_cannot_start_is_one_line_and_frees_the_data_dir(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from connectors.cli import app

    with FakeSocketMode() as sm, FakeSlackApi(socket_mode=sm) as slack:
        slack.fail("auth.test", error="invalid_auth")  # a revoked bot token
        for var, value in {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                           "DOCENT_SLACK_API_URL": slack.api_url, "DOCENT_DATA_DIR": str(tmp_path / "data"),
                           "DOCENT_EMBEDDER": "hash", "DOCENT_OPS_PORT": "0", "DOCENT_LOG_LEVEL": "CRITICAL"}.items():
            monkeypatch.setenv(var, value)
        result = CliRunner().invoke(app, ["run", "slack"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith("docent: slack could not start") and "invalid_auth" in line
    assert not (tmp_path / "data" / "holder.json").exists()
