"""Wiring: a Bolt `App` around `SlackConnector`, served over Socket Mode (default) or HTTP.

HTTP mode (`run_http`) is for several replicas behind a load balancer: every replica serves the
same signature-verified endpoint and the shared dedupe store makes each event answered once.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import signal
import socketserver
import sys
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

from connectors.slack import blocks
from connectors.slack.connector import SlackConnector
from connectors.slack.http_body import BodyRefused, read_body

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SHUTDOWN_DRAIN_S = 25.0
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
    """The Bolt app with docent's listeners. Acks are immediate; work runs after the ack."""
    client = client or make_web_client(settings)
    connector = connector or SlackConnector(docent, settings, client, answer_workers=answer_workers)
    signing_secret = _secret(settings.slack_signing_secret, "") if settings.slack_signing_secret else ""
    if not signing_secret:
        # Socket Mode needs no secret (its requests skip verification); a random one makes sure an
        # HTTP request can never pass verification with a guessable (empty) key.
        signing_secret = secrets.token_hex(32)
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
    app.event("app_mention")(connector.on_app_mention)
    app.event("message")(connector.on_message)
    app.command("/docent")(connector.on_command)
    app.shortcut("add_to_docent")(connector.on_add_to_docent)
    app.action(re.compile(f"^({blocks.FEEDBACK_UP}|{blocks.FEEDBACK_DOWN})$"))(connector.on_feedback)
    app.docent_connector = connector  # type: ignore[attr-defined]  # for close() and tests
    return app


def run_socket_mode(docent, settings) -> None:
    """Connect to Slack over Socket Mode (needs SLACK_APP_TOKEN, an xapp- token) and block."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app_token = _secret(settings.slack_app_token, "SLACK_APP_TOKEN")
    app = build_app(docent, settings)
    handler = SocketModeHandler(app, app_token)
    _exit_on_sigterm()
    try:
        handler.start()
    finally:
        handler.close()
        app.docent_connector.close(drain_s=SHUTDOWN_DRAIN_S)  # type: ignore[attr-defined]


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


def run_http(docent, settings, port: int = 3000, *, host: str = "0.0.0.0", answer_workers: int = 8) -> None:
    """Serve the Events API, slash command and interactivity at http://host:port/slack/events
    (signature-verified; GET /healthz for load balancers) and block."""
    _secret(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
    app = build_app(docent, settings, answer_workers=answer_workers)
    server = make_http_server(app, host, port)
    log.info("docent Slack events endpoint on http://%s:%d%s", host, server.server_port, EVENTS_PATH)
    _exit_on_sigterm()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        # Answers already acknowledged to Slack won't be redelivered: let them finish.
        app.docent_connector.close(drain_s=SHUTDOWN_DRAIN_S)  # type: ignore[attr-defined]


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (container stop, Procfile restart) into a normal exit so `finally` drains."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
