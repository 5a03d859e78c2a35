"""Socket Mode on slack_sdk's asyncio (aiohttp) client, feeding docent's synchronous Bolt `App`.

Why not Bolt's `SocketModeHandler` (slack_sdk's builtin client): over a loopback websocket, a
TCP connection that ends without a close frame left it deaf for ~57 s while it spun a core, and
the first envelope after a routine `disconnect` refresh was acked after ~3 s (Slack's deadline).
The aiohttp client notices a dead link within one ping interval and reconnects with no busy loop
(figures and the command that measures them: tests/loadtests/socket_mode.py).

Each envelope is dispatched to the `App` in a worker thread (Bolt's sync listeners block) and
acked with what Bolt answered — every envelope, whatever Bolt's status: Bolt answers 404 for an
event type docent has no listener for (e.g. `assistant_thread_started`), and an envelope left
unacked is redelivered by Slack again and again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import PlatformConnection

log = logging.getLogger(__name__)

# Seconds between the client's pings and its checks of the link: a dropped connection is
# replaced within about one interval (plus the connect), well inside the 15 s we promise.
PING_INTERVAL_S = 5.0
DISPATCH_WORKERS = 16


def ack_for(req: SocketModeRequest, response: BoltResponse | None) -> SocketModeResponse:
    """The ack for an envelope: Bolt's response body when it has one (slash-command replies),
    an empty ack for anything else — including 404s and listener errors."""
    if response is None or response.status != 200 or not response.body:
        return SocketModeResponse(envelope_id=req.envelope_id)
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        return SocketModeResponse(envelope_id=req.envelope_id, payload=json.loads(response.body))
    return SocketModeResponse(envelope_id=req.envelope_id, payload={"text": response.body})


def _session_closed(session) -> bool:
    if session is None:
        return True
    if hasattr(session, "closed"):  # aiohttp
        return bool(session.closed)
    return session.close_code is not None  # websockets


def tracked_client_class(base: type = SocketModeClient) -> type:
    """`base` (slack_sdk's aiohttp or websockets Socket Mode client) reporting each session it
    establishes to a `PlatformConnection`."""

    class TrackedClient(base):  # type: ignore[misc, valid-type]
        docent_connection: PlatformConnection | None = None

        async def connect(self) -> None:
            await super().connect()
            if not _session_closed(self.current_session) and self.docent_connection is not None:
                self.docent_connection.connected()
                log.info("slack socket mode connected")

        def link_up(self) -> bool:
            return not self.closed and not _session_closed(self.current_session) and not getattr(self, "stale", False)

    return TrackedClient


class SocketModeBridge:
    """`await bridge.start()` connects; `await bridge.stop(timeout_s)` stops taking envelopes,
    acks the ones being dispatched and closes the link."""

    def __init__(
        self,
        app: App,
        app_token: str,
        *,
        api_url: str,
        ping_interval_s: float = PING_INTERVAL_S,
        dispatch_workers: int = DISPATCH_WORKERS,
        client_class: type = SocketModeClient,
    ) -> None:
        self.app = app
        self.app_token = app_token
        self.api_url = api_url
        self.ping_interval_s = ping_interval_s
        self._pool = ThreadPoolExecutor(max_workers=dispatch_workers, thread_name_prefix="slack-socket")
        self._client_class = tracked_client_class(client_class)
        self._client = None
        self.connection = PlatformConnection("slack", probe=self.connected)
        self._accepting = True
        self._dispatching = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def connected(self) -> bool:
        return self._client is not None and self._client.link_up()

    async def start(self) -> None:
        # The client must be built inside the running loop (it starts its tasks and aiohttp session).
        self._client = self._client_class(
            self.app_token,
            web_client=AsyncWebClient(base_url=self.api_url, timeout=30),
            ping_interval=self.ping_interval_s,
            logger=logging.getLogger("slack_sdk.socket_mode"),
        )
        self._client.docent_connection = self.connection
        self._client.socket_mode_request_listeners.append(self._on_request)
        await self._client.connect()

    async def _on_request(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        if not self._accepting:
            return  # shutting down: unacked, Slack redelivers it to a live connection
        self._dispatching += 1
        self._idle.clear()
        try:
            try:
                response = await asyncio.get_running_loop().run_in_executor(self._pool, run_bolt_app, self.app, req)
            except Exception:
                log.exception("dispatching Slack envelope %s (%s) failed", req.envelope_id, req.type)
                response = None
            if response is not None and response.status == 404:
                log.debug("no listener for Slack %s envelope %s; acked", req.type, req.envelope_id)
            try:
                await client.send_socket_mode_response(ack_for(req, response))
            except Exception:
                log.warning("could not ack Slack envelope %s; Slack will redeliver it", req.envelope_id, exc_info=True)
        finally:
            self._dispatching -= 1
            if self._dispatching == 0:
                self._idle.set()

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("%d Slack envelope(s) still dispatching at shutdown", self._dispatching)
        if self._client is not None:
            await self._client.close()
        self.connection.disconnected()
        self._pool.shutdown(wait=False, cancel_futures=True)
