"""A loopback fake of Slack's Socket Mode websocket, for the real slack_sdk clients.

`FakeSlackApi(socket_mode=fake)` answers `apps.connections.open` (app token) with a fresh
`ws://127.0.0.1:…/link?ticket=N` URL of this server. Each connection gets Slack's `hello`; the
test then sends envelopes (`send_event`, `send_command`), reads the acks the client sends back
(`wait_ack`), and breaks connections the ways the internet does: a `disconnect` message
(`request_refresh`, like Slack's routine refresh), a websocket close frame (`close_current`), a
bare TCP close with no close frame at all (`drop_current`, a proxy or NAT idle timeout), or a
link that silently stops carrying anything, pings included (`freeze_current`, a black-holed NAT
mapping or a laptop lid).

The server runs on its own event loop in a daemon thread, so sync tests, async tests and
subprocesses can all use it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

APP_TOKEN = "xapp-test-token"
APP_ID = "A0DOCENT"


@dataclass
class Ack:
    envelope_id: str
    payload: dict | None
    at: float  # time.monotonic() when the server read it
    connection: int


@dataclass
class Connection:
    id: int
    opened_at: float
    ws: web.WebSocketResponse = field(repr=False)
    transport: asyncio.Transport | None = field(repr=False)
    closed_at: float | None = None
    frozen: bool = False


class FakeSocketMode:
    """`with FakeSocketMode() as sm, FakeSlackApi(socket_mode=sm) as slack:` — see the module docstring."""

    def __init__(self, *, refresh_close_after_s: float = 2.0) -> None:
        self.refresh_close_after_s = refresh_close_after_s  # Slack closes a refreshed link ~10 s later
        self.connections: list[Connection] = []
        self.acks: list[Ack] = []
        self.sent: dict[str, float] = {}  # envelope id → time.monotonic() when sent
        self.unknown: list[str] = []  # frames from the client that were neither acks nor JSON
        self._tickets = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-socket-mode", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeSocketMode":
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        try:
            self._call(self._stop(), timeout_s=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    async def _stop(self) -> None:
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> "FakeSocketMode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, coro, timeout_s: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # --- what apps.connections.open hands out --------------------------------------------------
    def new_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link?ticket={next(self._tickets)}"

    # --- the websocket ---------------------------------------------------------------------------
    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)  # pongs the client's pings, as Slack does
        await ws.prepare(request)
        with self._changed:
            conn = Connection(len(self.connections) + 1, time.monotonic(), ws, request.transport)
            self.connections.append(conn)
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.open_connections()),
            "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
            "connection_info": {"app_id": APP_ID},
        }))
        with self._changed:
            self._changed.notify_all()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._received(conn, message.data)
        finally:
            with self._changed:
                conn.closed_at = time.monotonic()
                self._changed.notify_all()
        return ws

    def _received(self, conn: Connection, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            frame = None
        with self._changed:
            if isinstance(frame, dict) and "envelope_id" in frame:
                self.acks.append(Ack(frame["envelope_id"], frame.get("payload"), time.monotonic(), conn.id))
            else:
                self.unknown.append(data)
            self._changed.notify_all()

    # --- inspection --------------------------------------------------------------------------------
    def open_connections(self) -> list[Connection]:
        with self._changed:
            return [c for c in self.connections if c.closed_at is None and not c.ws.closed and not c.frozen]

    def current(self) -> Connection:
        """The newest open connection (where Slack sends envelopes)."""
        conns = self.open_connections()
        if not conns:
            raise RuntimeError("no open Socket Mode connection")
        return conns[-1]

    def wait_for(self, predicate, timeout_s: float = 10.0):
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake Socket Mode: condition not met in {timeout_s} s "
                                       f"({len(self.connections)} connections, {len(self.acks)} acks)")
                self._changed.wait(min(left, 0.05))

    def wait_connections(self, count: int, timeout_s: float = 10.0) -> Connection:
        """Block until `count` connections have been opened in all; returns the newest open one."""
        self.wait_for(lambda: len(self.connections) >= count and self._newest_open(count), timeout_s)
        return self.current()

    def _newest_open(self, count: int) -> bool:
        conn = self.connections[count - 1]
        return conn.closed_at is None

    def wait_ack(self, envelope_id: str, timeout_s: float = 10.0) -> Ack:
        return self.wait_for(lambda: next((a for a in self.acks if a.envelope_id == envelope_id), None), timeout_s)

    def ack_latency_s(self, envelope_id: str, timeout_s: float = 10.0) -> float:
        return self.wait_ack(envelope_id, timeout_s).at - self.sent[envelope_id]

    # --- sending ---------------------------------------------------------------------------------------
    def send(self, envelope_type: str, payload: dict, *, retry_attempt: int = 0, retry_reason: str = "",
             accepts_response_payload: bool = False) -> str:
        """Send one envelope on the current connection; returns its envelope id."""
        envelope_id = f"env-{next(self._envelopes):06d}"
        frame = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                 "accepts_response_payload": accepts_response_payload,
                 "retry_attempt": retry_attempt, "retry_reason": retry_reason}
        conn = self.current()

        async def send() -> None:
            self.sent[envelope_id] = time.monotonic()
            await conn.ws.send_str(json.dumps(frame))

        self._call(send())
        return envelope_id

    def send_event(self, body: dict, *, retry_attempt: int = 0) -> str:
        """An Events API envelope; `body` is an `event_callback` (tests.fakes.slack_api.event_body)."""
        return self.send("events_api", body, retry_attempt=retry_attempt,
                         retry_reason="timeout" if retry_attempt else "")

    def send_command(self, fields: dict) -> str:
        """A slash command envelope (tests.fakes.slack_api.command_fields)."""
        return self.send("slash_commands", fields, accepts_response_payload=True)

    # --- breaking the link ---------------------------------------------------------------------------
    def request_refresh(self) -> Connection:
        """Slack's routine `disconnect` (refresh_requested); the old link closes a little later."""
        conn = self.current()

        async def refresh() -> None:
            await conn.ws.send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested",
                                               "debug_info": {"host": "fake-socket-mode"}}))
            self._loop.call_later(self.refresh_close_after_s, lambda: asyncio.ensure_future(conn.ws.close()))

        self._call(refresh())
        return conn

    def close_current(self, code: int = 1001) -> Connection:
        """Close the current link with a websocket close frame."""
        conn = self.current()
        self._call(conn.ws.close(code=code))
        return conn

    def drop_current(self) -> Connection:
        """End the current link's TCP connection without a close frame."""
        conn = self.current()

        async def drop() -> None:
            assert conn.transport is not None
            conn.transport.close()

        self._call(drop())
        return conn

    def freeze_current(self) -> Connection:
        """Stop reading the current link (so no pong, no ack ever comes back) without closing it."""
        conn = self.current()

        async def freeze() -> None:
            assert conn.transport is not None
            conn.transport.pause_reading()

        self._call(freeze())
        with self._changed:
            conn.frozen = True
        return conn


# --- the bot under test ----------------------------------------------------------------------------
class BridgeHarness:
    """docent's Bolt app on the Socket Mode bridge (connectors/slack/socket_mode.py), its own event
    loop in a thread, connected to a `FakeSocketMode` through a `FakeSlackApi`; see `serve_socket_mode`."""

    def __init__(self, app, bridge, loop: asyncio.AbstractEventLoop, slack, sm: FakeSocketMode):
        from tests.fakes.slack_api import SlackBotHarness

        self.app = app
        self.bridge = bridge
        self.loop = loop
        self.slack = slack
        self.sm = sm
        self.connector = app.docent_connector
        self.answers = SlackBotHarness("", app, slack)  # answer_for / placeholder_ts / posts

    def settle(self) -> None:
        assert self.connector.wait_idle(60), "listeners/answers still running after 60 s"


def serve_socket_mode(docent, settings, slack, sm: FakeSocketMode, **bridge_kwargs):
    """Context manager: the real app over Socket Mode against the fakes; stopped and drained on exit."""
    from contextlib import contextmanager

    from pydantic import SecretStr

    from connectors.slack.app import build_app, make_web_client
    from connectors.slack.socket_mode import SocketModeBridge
    from tests.fakes.slack_api import BOT_TOKEN

    @contextmanager
    def serving():
        cfg = settings.model_copy(update={"slack_api_url": slack.api_url, "slack_bot_token": SecretStr(BOT_TOKEN),
                                          "slack_app_token": SecretStr(APP_TOKEN)})
        app = build_app(docent, cfg, client=make_web_client(cfg))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="bridge-loop", daemon=True)
        thread.start()

        def run(coro, timeout_s: float = 30):
            return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout_s)

        async def start():
            bridge = SocketModeBridge(app, APP_TOKEN, api_url=slack.api_url, **bridge_kwargs)
            await bridge.start()
            return bridge

        bridge = run(start())
        try:
            sm.wait_connections(1)
            yield BridgeHarness(app, bridge, loop, slack, sm)
        finally:
            run(bridge.stop(2))
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            app.docent_connector.close(drain_s=30)

    return serving()
