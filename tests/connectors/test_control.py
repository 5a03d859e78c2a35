"""The CLI beside a running bot: store commands forwarded over the holder's control socket (a real
Unix socket, the real `ControlServer` around a real `Docent`), records-only commands that never
open the store, and one-line errors when the holder is busy, hung or gone."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from bot.core import Docent
from connectors.cli import app
from connectors.control.holder import DataDirLock
from connectors.control.server import ControlServer

LEAVE = "# Leave\n\nEmployees accrue twenty vacation days per year.\n"


@pytest.fixture
def env(tmp_path, monkeypatch, settings):
    monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    monkeypatch.setenv("DOCENT_RELEVANCE_THRESHOLD", "0.3")
    monkeypatch.chdir(tmp_path)
    return settings


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _json(result):
    out = result.stdout
    return json.loads(out[min(i for i in (out.find("{"), out.find("[")) if i >= 0):])


@contextmanager
def holder(settings, command: str = "docent run"):
    """What `docent run` does in embedded mode: hold the data dir, serve the control socket."""
    lock = DataDirLock(settings.data_dir)
    assert lock.acquire(command)
    docent = Docent.from_settings(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ControlServer(docent, lock, drain_s=2)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield docent, lock
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        docent.close()
        lock.release()


@pytest.fixture
def store_never_opened(monkeypatch):
    """Any attempt of this process's CLI to open the chunk store fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command opened the chunk store")

    monkeypatch.setattr("bot.core.open_store", refuse)


def test_store_commands_are_forwarded_to_the_running_holder(env, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(LEAVE)
    (docs / "empty.txt").write_text("  \n")
    with holder(env) as (docent, _lock):
        # From here on, a second open of the store in this process would fail: the CLI must forward.
        result = cli("ingest", str(docs), "--scope", "acme/C1")
        assert result.exit_code == 0, result.output
        assert "1 of 2 documents" in result.stdout and "empty.txt: the file has no text" in result.output
        assert "ingesting" in result.output  # the progress bar, drawn by the CLI process
        assert [d.name for d in docent.admin.list_documents(docent_scope("acme/C1"))] == ["leave.md"]

        answer = _json(cli("ask", "How many vacation days do employees accrue?", "--scope", "acme/C1", "--json"))
        assert answer["outcome"] == "answered" and answer["sources"][0]["source"] == "leave.md"
        streamed = cli("ask", "How many vacation days do employees accrue?", "--scope", "acme/C1")
        assert streamed.exit_code == 0 and "twenty" in streamed.stdout
        chat = CliRunner().invoke(app, ["chat", "--scope", "acme/C1"], input="How many vacation days?\n\n")
        assert chat.exit_code == 0 and "twenty" in chat.stdout

        missing = cli("docs", "remove", "nope.md", "--scope", "acme/C1")
        assert missing.exit_code == 1 and "couldn't find" in missing.output and "Traceback" not in missing.output
        assert cli("docs", "remove", "leave.md", "--scope", "acme/C1").exit_code == 0
        assert docent.admin.list_documents(docent_scope("acme/C1")) == []


def docent_scope(text: str):
    from knowledge.types import Scope

    return Scope.parse(text)


def test_records_commands_never_open_the_store(env, store_never_opened):
    lock = DataDirLock(env.data_dir)
    assert lock.acquire("docent run")  # a holder that isn't even serving: they don't need it
    try:
        assert _json(cli("docs", "list", "--json")) == []
        assert _json(cli("usage", "--json"))["requests"] == 0
        assert cli("migrate").exit_code == 0
    finally:
        lock.release()
    assert _json(cli("docs", "list", "--json")) == []  # nor when nobody holds the data dir


def test_a_cli_command_holding_the_data_dir_makes_others_wait_with_one_line(env):
    with DataDirLock(env.data_dir) as lock:
        assert lock.acquire("docent ingest")
        result = cli("ask", "anything?")
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and f"process {os.getpid()} (docent ingest)" in line and "wait for it" in line


def test_a_hung_holder_is_one_line_naming_its_pid(env, monkeypatch):
    monkeypatch.setattr("connectors.control.client.HELLO_TIMEOUT_S", 0.5)
    with DataDirLock(env.data_dir) as lock:
        assert lock.acquire("docent run")
        lock.socket_path.parent.mkdir(mode=0o700)
        hung = socket.socket(socket.AF_UNIX)
        hung.bind(str(lock.socket_path))
        hung.listen(8)  # connections queue in the kernel; nobody ever answers them
        lock.mark_serving()
        try:
            result = cli("ingest", __file__)
        finally:
            hung.close()
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert "\n" not in line
    assert f"process {os.getpid()} (docent run)" in line and f"kill {os.getpid()}" in line and "isn't answering" in line


def test_a_holder_that_died_leaves_nothing_in_the_way(env, tmp_path):
    lock = DataDirLock(env.data_dir)
    assert lock.acquire("docent run")
    lock.socket_path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(lock.socket_path))
    stale.close()
    lock.mark_serving()
    info = (env.data_dir / "holder.json").read_text()
    lock.release()  # what the kernel does when the holder dies …
    (env.data_dir / "holder.json").write_text(info)  # … leaving its notes and socket behind
    doc = tmp_path / "leave.md"
    doc.write_text(LEAVE)
    result = cli("ingest", str(doc))
    assert result.exit_code == 0, result.output  # opened the data dir itself
    assert [d["name"] for d in _json(cli("docs", "list", "--json"))] == ["leave.md"]


def test_the_control_socket_is_private_and_works_from_a_long_data_dir(tmp_path, monkeypatch, settings):
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "data"  # beyond sockaddr_un's 108 bytes
    cfg = settings.model_copy(update={"data_dir": deep})
    monkeypatch.setenv("DOCENT_DATA_DIR", str(deep))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    with holder(cfg) as (_docent, lock):
        assert len(str(lock.socket_path)) > 108
        assert stat.S_IMODE(lock.socket_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.socket_path.parent.stat().st_mode) == 0o700
        doc = tmp_path / "leave.md"
        doc.write_text(LEAVE)
        assert cli("ingest", str(doc)).exit_code == 0
    assert not lock.socket_path.exists()  # removed when the holder stops


def test_a_second_docent_run_on_a_held_data_dir_is_one_line(env, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "test-bot-token")
    with DataDirLock(env.data_dir) as lock:
        assert lock.acquire("docent run")
        result = cli("run", "discord")
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and f"process {os.getpid()} (docent run)" in line and "QDRANT_URL" in line
