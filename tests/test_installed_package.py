"""A non-editable install runs every command `docent --help` lists, outside the checkout.

The package is built from a copy of the sources and installed with `pip install --no-deps
--target` (the venv's dependencies, docent's own files only from the wheel), then each command
runs as the `docent` console script pip wrote, from a folder with no checkout in sight, on the
default embedder. This catches what an editable install hides: data files left out of the wheel
(weights, samples, migrations), imports of `tests/` or `eval/`, paths relative to the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from tests.conftest import PROJECT

# Every leaf command, each in a test of its own: one or more runs of (command, arguments, the
# exit code it must end with, a piece of what it must print). They share one data directory in
# which the fixture has already migrated and ingested `docs/` into the default scope and acme/C9.
Run = tuple[str, list[str], int, str]
RUNS: dict[str, list[Run]] = {
    "migrate": [("migrate", [], 0, "up to date")],
    "demo": [("demo", [], 0, "According to the documents")],
    "ingest": [("ingest", ["docs", "--scope", "acme/C1"], 0, "1 of 1 documents")],
    "ask": [("ask", ["How many days of paid leave do employees get?"], 0, "25 days")],
    "chat": [("chat", [], 0, "25 days")],
    "docs list": [("docs list", [], 0, "leave.md")],
    "docs remove": [("docs remove", ["leave.md", "--scope", "acme/C9"], 0, "Removed leave.md")],
    "usage": [("usage", ["--chart", "usage.png"], 0, "Requests:")],
    "gaps": [("gaps", [], 0, "Coverage gaps")],
    "caps": [("caps set", ["U1", "1.50"], 0, "$1.50"), ("caps list", [], 0, "U1"),
             ("caps clear", ["U1"], 0, "default cap")],
    "eval retrieval": [("eval retrieval", ["--beir", "beir", "--json"], 0, '"ndcg@10"')],
    "eval qa": [("eval qa", ["--docs", "docs", "--questions", "qa.jsonl", "--json"], 0, '"n_questions": 1')],
    "eval injection": [("eval injection", ["injection.jsonl", "--json"], 0, '"false_positives": 0')],
    # A one-document corpus keeps the ingest part short (without one it generates 300 chunks).
    "bench": [("bench", ["--sizes", "300", "--queries", "5", "--corpus", "docs", "--json"], 0, '"query_embed_p50_ms"')],
    # Without credentials these say what to set, with no traceback.
    "run": [("run", [], 1, "no platform to run"), ("run slack", [], 1, "SLACK_BOT_TOKEN"),
            ("run discord", [], 1, "DISCORD_TOKEN"), ("discord sync", [], 1, "DISCORD_TOKEN")],
}
STDIN = {"chat": "How many days of paid leave do employees get?\n"}


def listed_commands() -> set[str]:
    """The leaf commands of the Typer app, as `docent --help` and its groups list them."""
    from connectors.cli import app

    def leaves(cmd, prefix: str) -> set[str]:
        if hasattr(cmd, "commands"):  # a group (Typer ships its own click)
            out = {prefix} if prefix and cmd.invoke_without_command else set()
            for name, sub in cmd.commands.items():
                if not sub.hidden:
                    out |= leaves(sub, f"{prefix} {name}".strip())
            return out
        return {prefix}

    return leaves(typer.main.get_command(app), "")


def test_every_listed_command_has_a_run_here():
    assert listed_commands() == {command for runs in RUNS.values() for command, *_ in runs}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """docent's wheel installed into a folder of its own; returns that folder."""
    work = tmp_path_factory.mktemp("installed")
    src = work / "src"
    src.mkdir()
    for item in ("pyproject.toml", "README.md", "bot", "connectors", "knowledge", "admin", "gauges"):
        path = PROJECT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / item)
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _env(site: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCENT_", "SLACK_", "DISCORD_")) and k not in
           ("ANTHROPIC_API_KEY", "REDIS_URL", "DATABASE_URL", "QDRANT_URL", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), DOCENT_DATA_DIR=str(home / "data"), HF_HUB_OFFLINE="1",
               COLUMNS="200", NO_COLOR="1")
    return env


def test_the_installed_package_is_the_one_that_runs(installed, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import bot, connectors, knowledge, admin, gauges; "
         "print([m.__file__ for m in (bot, connectors, knowledge, admin, gauges)])"],
        cwd=tmp_path, env=_env(installed, tmp_path), capture_output=True, text=True, check=True,
    ).stdout
    assert str(PROJECT) not in out and out.count(str(installed)) == 5
    for data in ("knowledge/data/answerability_lr.json", "bot/guards/data/injection_lr.json",
                 "knowledge/samples/travel-policy.pdf", "admin/migrations/env.py", "connectors/slack_manifest.yaml"):
        assert (installed / data).is_file(), data


def _inputs(home: Path) -> None:
    (home / "docs").mkdir()
    (home / "docs" / "leave.md").write_text(
        "# Leave\n\nEmployees get 25 days of paid leave per year. Ask your manager before booking.\n\n"
        "## Carry-over\n\nUp to five unused days carry over into the next year; the rest lapse on 31 March. Days taken "
        "for jury service or a medical appointment are not counted as leave.\n")
    beir = home / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "Leave", "text": "Employees get 25 days of paid leave."}) + "\n"
        + json.dumps({"_id": "d2", "title": "Travel", "text": "Book trains through the travel portal."}) + "\n")
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "paid leave days"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (home / "qa.jsonl").write_text(json.dumps(
        {"id": "a", "question": "How many days of leave?", "gold": ["leave.md"], "answerable": True}) + "\n")
    (home / "injection.jsonl").write_text(json.dumps({"text": "How do I book a train?", "label": 0}) + "\n")


@pytest.fixture(scope="module")
def home(installed, tmp_path_factory) -> Path:
    """A folder outside the checkout with the inputs, a migrated database and `docs/` ingested."""
    home = tmp_path_factory.mktemp("home")
    _inputs(home)
    for command in (["migrate"], ["ingest", "docs"], ["ingest", "docs", "--scope", "acme/C9"]):  # C9: to remove
        done = _docent(installed, home, command)
        assert done.returncode == 0, done.stdout + done.stderr
    return home


def _docent(site: Path, home: Path, argv: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    script = site / "bin" / "docent"  # the console script pip wrote
    return subprocess.run([sys.executable, str(script), *argv], cwd=home, env=_env(site, home), input=stdin,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("name", list(RUNS))
def test_each_command_runs_from_the_installed_package(installed, home, name):
    for command, args, code, expected in RUNS[name]:
        done = _docent(installed, home, [*command.split(), *args], STDIN.get(command, ""))
        output = done.stdout + done.stderr
        assert done.returncode == code and expected in output and "Traceback" not in output, (
            f"docent {command} {' '.join(args)} → exit {done.returncode}:\n{output[-1500:]}")
    if name == "usage":
        assert (home / "usage.png").stat().st_size > 1000
