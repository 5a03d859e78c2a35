"""Wiring: a Bolt `App` around `SlackConnector`, served over Socket Mode (default) or HTTP.

One workspace runs on SLACK_BOT_TOKEN; several (HTTP mode) on Bolt's OAuth flow, each with its
own installation in docent's database (connectors/slack/oauth.py).

Socket Mode runs on slack_sdk's asyncio client (connectors/slack/socket_mode.py) in `docent run`'s
event loop; HTTP mode (`SlackHttpPlatform`) is for several replicas behind a load balancer: every
replica serves the same signature-verified endpoint and the shared dedupe store makes each event
answered once. Both are platforms of connectors/run.py (ops endpoint, graceful shutdown).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.metrics import PlatformConnection
from connectors.slack import blocks, oauth
from connectors.slack.assistant import AssistantSurface
from connectors.slack.clients import SlackClients
from connectors.slack.connector import SlackConnector
from connectors.slack.http_body import BodyRefused, read_body

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
ADD_TO_DOCENT = "add_to_docent"  # message shortcuts (connectors/slack_manifest.yaml)
ASK_DOCENT = "ask_docent"
# Slack's events, commands and interactions are a few KB; Bolt never sees a body over this.
MAX_BODY_BYTES = 1024 * 1024


class SlackSetupError(RuntimeError):
    """A token or secret the chosen mode needs is missing; the message says which."""


def _secret(value, name: str) -> str:
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if not text:
        raise SlackSetupError(f"{name} is not set (see README: Slack in five minutes).")
    return text


def make_web_client(settings, token: str | None = None) -> WebClient:
    """WebClient on `settings.slack_api_url` that waits out 429s (Retry-After) and retries
    connection resets and 5xx a couple of times."""
    return WebClient(
        token=token or _secret(settings.slack_bot_token, "SLACK_BOT_TOKEN"),
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_app(
    docent,
    settings,
    *,
    client: WebClient | None = None,
    connector: SlackConnector | None = None,
    answer_workers: int = 8,
) -> App:
    """The Bolt app with docent's listeners. Acks are immediate; work runs after the ack.

    With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET it serves Bolt's OAuth flow and each
    workspace's own token (connectors/slack/oauth.py); otherwise the single SLACK_BOT_TOKEN."""
    signing_secret = _secret(settings.slack_signing_secret, "") if settings.slack_signing_secret else ""
    if not signing_secret:
        # Socket Mode needs no secret (its requests skip verification); a random one makes sure an
        # HTTP request can never pass verification with a guessable (empty) key.
        signing_secret = secrets.token_hex(32)
    if oauth.distributed(settings):
        base = client or WebClient(base_url=settings.slack_api_url, timeout=30)  # no token: each workspace's own
        flow = oauth.oauth_settings(settings, docent.db)
        clients = SlackClients(base, installations=flow.installation_store,
                               make_client=lambda token: make_web_client(settings, token))
        connector = connector or SlackConnector(docent, settings, clients, answer_workers=answer_workers)
        app = App(client=base, signing_secret=signing_secret, oauth_settings=flow, process_before_response=False,
                  listener_executor=connector.listener_executor())
    else:
        client = client or make_web_client(settings)
        connector = connector or SlackConnector(docent, settings, SlackClients(client), answer_workers=answer_workers)
        app = App(
            client=client,
            signing_secret=signing_secret,
            process_before_response=False,
            # auth.test once at start: a bad token fails fast, and a burst of first events doesn't
            # each call auth.test before its ack.
            token_verification_enabled=True,
            # Bolt only ever runs short listeners here (slow work goes to the connector's pool).
            listener_executor=connector.listener_executor(),
        )
    # Assistant threads first: its middleware takes their messages before the plain listeners.
    app.assistant(AssistantSurface(connector).middleware())
    app.event("app_mention")(connector.on_app_mention)
    app.event("message")(connector.on_message)
    app.event("app_uninstalled")(connector.on_app_uninstalled)
    app.event("tokens_revoked")(connector.on_tokens_revoked)
    app.command("/docent")(connector.on_command)
    app.shortcut(ADD_TO_DOCENT)(connector.on_add_to_docent)
    app.shortcut(ASK_DOCENT)(connector.on_ask_about_message)
    feedback = "|".join(re.escape(a) for a in (blocks.FEEDBACK_UP, blocks.FEEDBACK_DOWN, blocks.FEEDBACK_BUTTONS))
    app.action(re.compile(f"^({feedback})$"))(connector.on_feedback)
    app.action(blocks.SHARE)(connector.on_share)
    app.docent_connector = connector  # type: ignore[attr-defined]  # for close() and tests
    return app


def require_credentials(settings, *, http: bool) -> None:
    """Raise SlackSetupError naming the token or secret the chosen mode lacks."""
    if http and oauth.distributed(settings):
        _secret(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
        return
    _secret(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    if http:
        _secret(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
    else:
        _secret(settings.slack_app_token, "SLACK_APP_TOKEN")


class _SlackPlatform:
    """What both Slack transports share: draining and closing the connector behind the Bolt app."""

    app: App | None = None

    async def drain(self, timeout_s: float) -> bool:
        # Events already acked won't be redelivered: let their answers finish.
        if self.app is None:
            return True
        return await asyncio.to_thread(self.app.docent_connector.wait_idle, timeout_s)  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self.app is not None:
            self.app.docent_connector.close()  # type: ignore[attr-defined]


class SlackSocketModePlatform(_SlackPlatform):
    """Slack over Socket Mode (needs SLACK_APP_TOKEN, an xapp- token) as a `docent run` platform."""

    name = "slack"

    def __init__(self, docent, settings, *, answer_workers: int = 8) -> None:
        self.docent = docent
        self.settings = settings
        self.app_token = _secret(settings.slack_app_token, "SLACK_APP_TOKEN")
        _secret(settings.slack_bot_token, "SLACK_BOT_TOKEN")
        self.answer_workers = answer_workers
        self.app: App | None = None
        self.bridge = None

    async def start(self, on_fatal) -> None:
        from connectors.slack.socket_mode import SocketModeBridge

        # auth.test in the constructor: a bad token fails here, before anything is served.
        self.app = await asyncio.to_thread(build_app, self.docent, self.settings, answer_workers=self.answer_workers)
        self.bridge = SocketModeBridge(self.app, self.app_token, api_url=self.settings.slack_api_url)
        await self.bridge.start()

    def is_connected(self) -> bool:
        return self.bridge is not None and self.bridge.connected()

    async def stop_intake(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()



def run_socket_mode(docent, settings) -> None:
    """`docent run slack`: connect over Socket Mode and serve until SIGTERM / Ctrl-C."""
    from connectors.run import run_platforms

    run_platforms(docent, settings, [SlackSocketModePlatform(docent, settings)])


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung client never blocks shutdown
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog of 5 refuses bursts of events


class _QuietHandler(WSGIRequestHandler):
    timeout = 10  # seconds one socket read may wait: a client that stops sending frees its thread

    def log_message(self, format: str, *args) -> None:  # access logs at debug, not on stderr
        log.debug("http %s", format % args)


def _wsgi(app: App, path: str):
    bolt = SlackRequestHandler(app, path=path)

    def application(environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if environ.get("REQUEST_METHOD") == "POST":
            # Bolt reads and decodes any body whole before it checks the signature: bound it first.
            try:
                body = read_body(environ, max_bytes=MAX_BODY_BYTES)
                body.decode("utf-8")  # Bolt's decode would fail with a 500 and a traceback
            except BodyRefused as refused:
                log.info("refused an HTTP request: %s", refused)
                return _plain(start_response, refused.status, refused.reason)
            except UnicodeDecodeError:
                return _plain(start_response, "400 Bad Request", "the request body is not UTF-8")
            environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            return bolt(environ, start_response)
        except ValueError as exc:  # Bolt parses the body before it checks the signature
            log.info("refused a malformed HTTP request body: %r", exc)
            return _plain(start_response, "400 Bad Request", "malformed request body")

    return application


def _plain(start_response, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000, path: str = EVENTS_PATH) -> WSGIServer:
    """A threaded WSGI server for the Bolt app (port 0 picks a free port: `server.server_port`)."""
    return make_server(host, port, _wsgi(app, path), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


class SlackHttpPlatform(_SlackPlatform):
    """Slack's Events API over HTTP (needs SLACK_SIGNING_SECRET) as a `docent run` platform."""

    name = "slack"

    def __init__(self, docent, settings, port: int = 3000, *, host: str = "0.0.0.0", answer_workers: int = 8) -> None:
        require_credentials(settings, http=True)
        self.docent = docent
        self.settings = settings
        self.port = port
        self.host = host
        self.answer_workers = answer_workers
        self.app: App | None = None
        self.server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.connection = PlatformConnection("slack", probe=self.is_connected)

    async def start(self, on_fatal) -> None:
        self.app = await asyncio.to_thread(build_app, self.docent, self.settings, answer_workers=self.answer_workers)
        self.server = make_http_server(self.app, self.host, self.port)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="slack-http", daemon=True)
        self._thread.start()
        self.connection.connected()
        log.info("docent Slack events endpoint on http://%s:%d%s", self.host, self.server.server_port, EVENTS_PATH)
        if oauth.distributed(self.settings):
            log.info("Slack install page on http://%s:%d%s", self.host, self.server.server_port, oauth.INSTALL_PATH)

    def is_connected(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def stop_intake(self) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.shutdown)
            self.server.server_close()



def run_http(docent, settings, port: int = 3000, *, host: str = "0.0.0.0", answer_workers: int = 8) -> None:
    """Serve the Events API, slash command and interactivity at http://host:port/slack/events
    (signature-verified; GET /healthz for load balancers) until SIGTERM / Ctrl-C."""
    from connectors.run import run_platforms

    run_platforms(docent, settings, [SlackHttpPlatform(docent, settings, port, host=host, answer_workers=answer_workers)])
