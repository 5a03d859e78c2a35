"""The control socket a running `docent run` serves, so CLI commands reach its store.

HTTP over the Unix socket `run/control.sock` in the data dir (mode 0600, folder 0700; the peer
must be this user or root). The CLI is the data dir's operator, so forwarded operations act as
the CLI's admin actor — exactly what they would do if the CLI had opened the store itself.

    GET  /v1/hello                        {"pid", "data_dir"}
    POST /v1/documents?name&workspace&channel&user[&url]   body: the file → UploadReport
    POST /v1/documents/remove   {"workspace", "channel", "name", "user"} → DocumentRecord
    POST /v1/ask                {"question": Question} → NDJSON: {"delta": text}… then {"answer": Answer}

User errors come back as 400 {"error": {"type", "message"}}; anything else as 500 with no detail
(the holder logs it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
from typing import TYPE_CHECKING

from aiohttp import web

from admin.types import Actor
from connectors.control import wire
from connectors.control.holder import DataDirLock, private_run_dir, unix_address
from knowledge.types import Scope

if TYPE_CHECKING:
    from bot.core import Docent

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # the admin operation enforces the real limit, with a message


def _cli_actor(workspace: str, user: str) -> Actor:
    return Actor(platform="cli", workspace=workspace, user_id=user or "cli", is_platform_admin=True)


def _peer_uid(request: web.Request) -> int | None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


@web.middleware
async def _errors_and_peer(request: web.Request, handler):
    uid = _peer_uid(request)
    if uid is not None and uid not in (os.getuid(), 0):
        return web.json_response({"error": {"type": "Forbidden", "message": "not this data directory's user"}},
                                 status=403)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as err:
        if wire.is_user_error(err):
            return web.json_response({"error": wire.error_json(err)}, status=400)
        log.exception("control request %s %s failed", request.method, request.path)
        return web.json_response({"error": {"type": "InternalError", "message": "see the bot's log"}}, status=500)


class ControlServer:
    def __init__(self, docent: "Docent", lock: DataDirLock, *, drain_s: float = 25.0) -> None:
        self.docent = docent
        self.lock = lock
        self.drain_s = drain_s
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[_errors_and_peer], client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_get("/v1/hello", self._hello)
        app.router.add_post("/v1/documents", self._upload)
        app.router.add_post("/v1/documents/remove", self._remove)
        app.router.add_post("/v1/ask", self._ask)
        # Cleanup waits this long for requests in flight (an ingest, an answer) before closing.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.drain_s)
        await self._runner.setup()
        private_run_dir(self.lock)
        path = self.lock.socket_path
        path.unlink(missing_ok=True)  # left by a holder that died; we hold the lock now
        with unix_address(path) as address:
            await web.UnixSite(self._runner, address).start()
        path.chmod(0o600)
        self.lock.mark_serving(True)
        log.info("control socket at %s", path)

    async def stop(self) -> None:
        """Stop taking requests, let those in flight finish (up to `drain_s`), remove the socket."""
        if self._runner is None:
            return
        self.lock.mark_serving(False)
        await self._runner.cleanup()
        self._runner = None
        self.lock.socket_path.unlink(missing_ok=True)

    # --- handlers ---------------------------------------------------------------------------------
    async def _hello(self, _request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid(), "data_dir": str(self.lock.data_dir)})

    async def _upload(self, request: web.Request) -> web.Response:
        q = request.query
        scope = Scope(q["workspace"], q.get("channel") or None)
        data = await request.read()
        report = await asyncio.to_thread(
            self.docent.admin.upload, _cli_actor(scope.workspace, q.get("user", "")), q["name"], data, scope,
            url=q.get("url") or None,
        )
        return web.json_response({"report": wire.dump(wire.UPLOAD_REPORT, report)})

    async def _remove(self, request: web.Request) -> web.Response:
        body = await request.json()
        scope = Scope(body["workspace"], body.get("channel") or None)
        record = await asyncio.to_thread(
            self.docent.admin.remove, _cli_actor(scope.workspace, body.get("user", "")), scope, body["name"]
        )
        return web.json_response({"record": wire.dump(wire.DOCUMENT_RECORD, record)})

    async def _ask(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        question = wire.load(wire.QUESTION, body["question"])
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()

        def on_delta(text: str) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, text)

        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        answering = asyncio.ensure_future(asyncio.to_thread(self.docent.ask, question, on_delta=on_delta))
        answering.add_done_callback(lambda _: loop.call_soon(deltas.put_nowait, None))
        try:
            while (text := await deltas.get()) is not None:
                await response.write((json.dumps({"delta": text}) + "\n").encode())
            try:
                line = {"answer": wire.dump(wire.ANSWER, await answering)}
            except Exception:  # Docent.ask answers every question itself; this is a bug, logged here
                log.exception("forwarded question failed")
                line = {"error": {"type": "InternalError", "message": "see the bot's log"}}
            await response.write((json.dumps(line) + "\n").encode())
            await response.write_eof()
        except ConnectionResetError:
            # The CLI went away (Ctrl-C): the answer still finishes and is recorded in the ledger.
            log.info("forwarded question's caller disconnected before the answer")
        return response
