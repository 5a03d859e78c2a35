"""The `docent` command line through Typer's runner, on the embedded defaults (hash embedder)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from connectors.cli import app


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    monkeypatch.setenv("DOCENT_RELEVANCE_THRESHOLD", "0.3")
    for var in ("ANTHROPIC_API_KEY", "REDIS_URL", "DATABASE_URL", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args))
        return result

    return run


def _json(result) -> object:
    out = result.stdout
    return json.loads(out[min(i for i in (out.find("{"), out.find("[")) if i >= 0):])


def test_ingest_list_ask_remove_and_usage(cli, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees accrue twenty vacation days per year.\n")
    (docs / "empty.txt").write_text("   \n")
    result = cli("ingest", str(docs), "--scope", "acme/C1")
    assert result.exit_code == 0, result.output
    assert "1 of 2 documents" in result.stdout and "empty.txt" in result.output

    listed = _json(cli("docs", "list", "--scope", "acme/C1", "--json"))
    assert [d["name"] for d in listed] == ["leave.md"]

    answer = _json(cli("ask", "How many vacation days do employees accrue?", "--scope", "acme/C1", "--json"))
    assert answer["outcome"] == "answered" and answer["sources"][0]["source"] == "leave.md"
    elsewhere = _json(cli("ask", "How many vacation days do employees accrue?", "--scope", "acme/C2", "--json"))
    assert elsewhere["outcome"] == "abstained"

    usage = _json(cli("usage", "--workspace", "acme", "--json"))
    assert usage["requests"] == 2

    assert cli("docs", "remove", "leave.md", "--scope", "acme/C1").exit_code == 0
    assert _json(cli("docs", "list", "--scope", "acme/C1", "--json")) == []
    assert cli("docs", "remove", "leave.md", "--scope", "acme/C1").exit_code == 1


def test_ask_renders_an_abstention_with_related_passages(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCENT_RELEVANCE_THRESHOLD", "0.99")  # the gate abstains on anything
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees accrue twenty vacation days per year.\n")
    assert cli("ingest", str(docs), "--scope", "acme/C1").exit_code == 0
    result = cli("ask", "How many vacation days do employees accrue?", "--scope", "acme/C1")
    assert result.exit_code == 0, result.output
    assert "abstained" in result.stdout and "Related, not an answer:" in result.stdout
    assert "Employees accrue twenty vacation days per year." in result.stdout


def test_bad_options_are_clear_errors_not_tracebacks(cli, tmp_path):
    for args in (("usage", "--days", "0"), ("eval", "qa", "--docs", str(tmp_path / "nope"), "--questions", "x.jsonl")):
        result = cli(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_folder_ingest_names_files_by_their_path_inside_the_folder(cli, tmp_path):
    docs = tmp_path / "handbook"
    for folder, fact in (("travel", "Trains are booked in second class."), ("leave", "Leave requests go to your lead.")):
        (docs / folder).mkdir(parents=True)
        (docs / folder / "index.md").write_text(f"# {folder}\n\n{fact}\n")
    result = cli("ingest", str(docs))
    assert result.exit_code == 0, result.output
    assert "2 of 2 documents" in result.stdout
    listed = _json(cli("docs", "list", "--json"))
    assert sorted(d["name"] for d in listed) == ["leave/index.md", "travel/index.md"]


def test_two_files_with_one_name_are_reported_not_silently_replaced(cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "index.md").write_text("# A\n\nThe first index page says alpha.\n")
    (b / "index.md").write_text("# B\n\nThe second index page says beta.\n")
    result = cli("ingest", str(a / "index.md"), str(b / "index.md"))
    assert "1 of 2 documents" in result.stdout
    assert "same name" in result.output and str(b / "index.md") in result.output
    listed = _json(cli("docs", "list", "--json"))
    assert [d["name"] for d in listed] == ["index.md"]
    answer = _json(cli("ask", "What does the first index page say?", "--json"))
    assert "alpha" in answer["text"]


def test_caps_set_list_clear(cli):
    result = cli("caps", "set", "U0ALICE", "$2.50", "--workspace", "acme")
    assert result.exit_code == 0, result.output
    assert "up to $2.50 a day" in result.stdout
    listed = _json(cli("caps", "list", "--workspace", "acme", "--json"))
    assert listed["default_usd"] == 1.0
    assert [(c["user"], c["daily_cap_usd"]) for c in listed["caps"]] == [("U0ALICE", 2.5)]
    assert _json(cli("caps", "list", "--workspace", "other", "--json"))["caps"] == []

    for amount in ("lots", "-3"):
        bad = cli("caps", "set", "--workspace", "acme", "--", "U0ALICE", amount)
        assert bad.exit_code == 2 and "isn't a daily cap" in bad.output and "Traceback" not in bad.output
    assert _json(cli("caps", "list", "--workspace", "acme", "--json"))["caps"][0]["daily_cap_usd"] == 2.5

    cleared = cli("caps", "clear", "U0ALICE", "--workspace", "acme")
    assert cleared.exit_code == 0 and "default cap of $1.00" in cleared.stdout
    assert _json(cli("caps", "list", "--workspace", "acme", "--json"))["caps"] == []
