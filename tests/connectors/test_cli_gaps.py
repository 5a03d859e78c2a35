"""`docent gaps` through Typer's runner on a real SQLite ledger (hash embedder)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from admin.db import Database
from admin.ledger import LedgerEntry, UsageLedger
from admin.registry import DocumentRegistry
from connectors.cli import app

DESK = ("How do I request a standing desk?", "How can I request a standing desk for my office?")


def _env(monkeypatch, tmp_path, **extra: str) -> Database:
    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    for var in ("ANTHROPIC_API_KEY", "REDIS_URL", "DATABASE_URL", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    db = Database(f"sqlite:///{tmp_path / 'data' / 'docent.db'}")
    db.migrate()
    return db


def test_gaps_text_and_json_for_one_workspace_or_channel(monkeypatch, tmp_path):
    db = _env(monkeypatch, tmp_path)
    ledger = UsageLedger(db)
    ledger.record(LedgerEntry("r1", "slack", "acme", "C1", "u1", "abstained", question=DESK[0]))
    ledger.record(LedgerEntry("r2", "slack", "acme", "C2", "u2", "answered", question=DESK[1]))
    ledger.record(LedgerEntry("r3", "slack", "other", "C1", "u3", "abstained", question=DESK[0]))
    ledger.record(LedgerEntry("r4", "slack", "acme", "C1", "u3", "abstained", question=DESK[0].lower()))
    DocumentRegistry(db).record_feedback("r2", "u9", False, "it quoted the chair policy")
    db.close()
    runner = CliRunner()

    text = runner.invoke(app, ["gaps", "--scope", "acme"])
    assert text.exit_code == 0, text.output
    assert f" 1. 3× “{DESK[0].lower()}” (2 abstained, 1 👎)" in text.stdout  # the newest wording
    assert "channels: #C1 ×2, #C2 ×1" in text.stdout and "said: “it quoted the chair policy”" in text.stdout

    one = json.loads(runner.invoke(app, ["gaps", "--scope", "acme/C2", "--days", "7", "--json"]).stdout)
    assert (one["channel"], one["days"], one["requests"]) == ("C2", 7, 1)
    assert one["clusters"][0]["representative"] == DESK[1] and one["clusters"][0]["askers"] == ["u2"]


def test_gaps_with_hashed_questions_says_they_need_redacted_ones(monkeypatch, tmp_path):
    db = _env(monkeypatch, tmp_path, DOCENT_STORE_QUESTION="hash")
    UsageLedger(db).record(LedgerEntry("r1", "slack", "acme", "C1", "u1", "abstained", question="0f" * 32))
    db.close()
    result = CliRunner().invoke(app, ["gaps", "--scope", "acme"])
    assert result.exit_code == 0, result.output
    assert "gaps need redacted questions" in result.stderr
    assert "1 of them are stored hashed" in result.stdout and "group(s)" in result.stdout
