"""`python -m tests.loadtests socket-mode`: how slack_sdk's Socket Mode clients survive a broken link.

Each client runs a real Bolt app against the loopback fake Socket Mode server
(tests/fakes/slack_socket_mode.py). Per run:

- drop:     the server ends the TCP connection without a close frame (a proxy or NAT idle
            timeout); measured: seconds until the client has a new connection, and the CPU
            seconds this process used meanwhile (a busy loop shows as ~1 CPU-second per second);
- freeze:   the link silently stops carrying anything, pings included (a black-holed NAT
            mapping); measured: seconds until the client has a new connection;
- refresh:  the server sends Slack's routine `disconnect` (refresh_requested); measured: the ack
            latency of the first envelope sent on the new connection;
- unknown:  an event type the app has no listener for; measured: whether it is acked at all.

Clients: "builtin" (Bolt's SocketModeHandler, what docent used before), and docent's bridge
(connectors/slack/socket_mode.py) over slack_sdk's "aiohttp" and "websockets" clients.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

CLIENTS = ("builtin", "aiohttp", "websockets")


@dataclass(frozen=True)
class RecoveryRun:
    client: str
    first_ack_ms: float
    drop_reconnect_s: float
    drop_cpu_s: float
    freeze_reconnect_s: float | None  # None: no new connection within the timeout
    refresh_ack_ms: float
    unknown_event_acked: bool


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _app(api_url: str):
    from slack_bolt import App
    from slack_sdk import WebClient

    from tests.fakes.slack_api import BOT_TOKEN

    app = App(client=WebClient(token=BOT_TOKEN, base_url=api_url), signing_secret="unused-in-socket-mode")
    app.event("app_mention")(lambda event: None)
    return app


class _Loop:
    """An event loop in a thread, for the asyncio clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout_s: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def measure_client(client: str, *, reconnect_timeout_s: float = 120.0) -> RecoveryRun:
    from tests.fakes.slack_api import FakeSlackApi, event_body, mention_event
    from tests.fakes.slack_socket_mode import APP_TOKEN, FakeSocketMode

    with FakeSocketMode() as sm, FakeSlackApi(socket_mode=sm) as slack:
        app = _app(slack.api_url)
        loop = handler = bridge = None
        if client == "builtin":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(app, APP_TOKEN)
            handler.connect()
        else:
            from connectors.slack.socket_mode import SocketModeBridge

            if client == "aiohttp":
                from slack_sdk.socket_mode.aiohttp import SocketModeClient
            else:
                from slack_sdk.socket_mode.websockets import SocketModeClient
            loop = _Loop()

            async def start():
                b = SocketModeBridge(app, APP_TOKEN, api_url=slack.api_url, client_class=SocketModeClient)
                await b.start()
                return b

            bridge = loop.run(start())
        try:
            sm.wait_connections(1)
            first = sm.ack_latency_s(sm.send_event(event_body(mention_event("first"))))

            t0, cpu0 = time.monotonic(), _cpu_s()
            sm.drop_current()
            sm.wait_connections(2, reconnect_timeout_s)
            drop_s, drop_cpu = time.monotonic() - t0, _cpu_s() - cpu0

            sm.request_refresh()
            sm.wait_connections(3, 30)
            refresh = sm.ack_latency_s(sm.send_event(event_body(mention_event("after refresh", ts="1700000009.000100"))))

            unknown_id = sm.send_event(event_body({"type": "assistant_thread_started", "assistant_thread": {}}))
            try:
                sm.wait_ack(unknown_id, 3)
                unknown_acked = True
            except TimeoutError:
                unknown_acked = False

            t0 = time.monotonic()
            sm.freeze_current()
            try:
                sm.wait_connections(4, reconnect_timeout_s)
                freeze_s: float | None = round(time.monotonic() - t0, 2)
            except TimeoutError:
                freeze_s = None  # never recovered within reconnect_timeout_s
            return RecoveryRun(client, round(first * 1000, 1), round(drop_s, 2), round(drop_cpu, 2),
                               freeze_s, round(refresh * 1000, 1), unknown_acked)
        finally:
            if handler is not None:
                handler.close()
            if bridge is not None and loop is not None:
                loop.run(bridge.stop(1))
                loop.close()


def run_socket_mode_bench(
    *, runs: int = 3, clients: tuple[str, ...] = CLIENTS, reconnect_timeout_s: float = 120.0
) -> dict[str, Any]:
    """Medians over `runs` runs per client, plus every run."""
    result: dict[str, Any] = {"cores": os.cpu_count() or 0, "runs": runs}
    for client in clients:
        measured = [measure_client(client, reconnect_timeout_s=reconnect_timeout_s) for _ in range(runs)]
        result[client] = {
            "drop_reconnect_s_median": statistics.median(r.drop_reconnect_s for r in measured),
            "drop_cpu_s_median": statistics.median(r.drop_cpu_s for r in measured),
            "freeze_reconnect_s_median": (
                statistics.median(r.freeze_reconnect_s for r in measured)  # type: ignore[type-var]
                if all(r.freeze_reconnect_s is not None for r in measured) else f"> {reconnect_timeout_s:.0f} s"
            ),
            "refresh_ack_ms_median": statistics.median(r.refresh_ack_ms for r in measured),
            "first_ack_ms_median": statistics.median(r.first_ack_ms for r in measured),
            "unknown_event_acked": all(r.unknown_event_acked for r in measured),
            "each": [asdict(r) for r in measured],
        }
    return result
