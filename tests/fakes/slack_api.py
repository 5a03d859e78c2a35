"""A loopback fake of the Slack Web API, plus helpers to send signed Events API requests.

Serves the handful of methods docent calls (auth.test, chat.postMessage, chat.update,
chat.postEphemeral, reactions.add, conversations.replies, users.info, files.info), the file
download URL (checks the bot token), response_url posts, and scriptable 429s with Retry-After.
Every call is recorded; `GET /_calls` returns them as JSON so other processes can be counted.
With `socket_mode=` (a `tests.fakes.slack_socket_mode.FakeSocketMode`) it also answers
`apps.connections.open` for the app token with that server's websocket URLs.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0DOCENT"
BOT_ID = "B0DOCENT"
BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"


@dataclass
class ApiCall:
    method: str
    params: dict
    at: float
    authorization: str | None = None


@dataclass
class FakeFile:
    id: str
    name: str
    content: bytes
    mimetype: str = "text/plain"
    size: int | None = None  # what files.info claims; default len(content)


@dataclass
class _RateLimit:
    remaining: int
    retry_after_s: int


@dataclass
class FakeSlackState:
    calls: list[ApiCall] = field(default_factory=list)
    # channel → thread_ts → messages (parent first)
    threads: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    rate_limits: dict[str, _RateLimit] = field(default_factory=dict)
    failures: dict[str, list] = field(default_factory=dict)  # method → [remaining, error]
    downloads: list[str] = field(default_factory=list)


class FakeSlackApi:
    """Start with `with FakeSlackApi() as slack:`; `slack.api_url` goes into settings.slack_api_url."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, socket_mode=None):
        self.socket_mode = socket_mode
        self.state = FakeSlackState()
        self._lock = threading.RLock()  # wait_for predicates may read state under the lock
        self._ts = itertools.count(1)
        self._changed = threading.Condition(self._lock)
        handler = _make_handler(self)
        self._server = _Server((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "FakeSlackApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeSlackApi":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # --- scripting --------------------------------------------------------------------------
    def add_user(self, user_id: str, *, admin: bool = False, owner: bool = False, name: str | None = None,
                 team_id: str = TEAM_ID) -> None:
        """A user of `team_id` (another team: a Slack Connect user from another organisation)."""
        with self._lock:
            self.state.users[user_id] = {
                "id": user_id,
                "team_id": team_id,
                "name": name or user_id.lower(),
                "is_admin": admin,
                "is_owner": owner,
                "is_primary_owner": False,
                "is_bot": False,
            }

    def add_file(self, file: FakeFile) -> dict:
        with self._lock:
            self.state.files[file.id] = file
        return self.file_object(file)

    def file_object(self, file: FakeFile) -> dict:
        return {
            "id": file.id,
            "name": file.name,
            "title": file.name,
            "mimetype": file.mimetype,
            "size": file.size if file.size is not None else len(file.content),
            "url_private_download": f"{self.base_url}/files/{file.id}/{urllib.parse.quote(file.name)}",
            "permalink": f"https://example.slack.com/files/{file.id}",
        }

    def add_message(self, channel: str, *, user: str, text: str, ts: str, thread_ts: str | None = None,
                    bot_id: str | None = None) -> dict:
        """Seed a message (e.g. a user's reply in a thread) that conversations.replies will return."""
        message = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if bot_id:
            message["bot_id"] = bot_id
        with self._lock:
            self.state.threads.setdefault(channel, {}).setdefault(thread_ts or ts, []).append(message)
        return message

    def rate_limit(self, method: str, *, times: int = 1, retry_after_s: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429 with Retry-After."""
        with self._lock:
            self.state.rate_limits[method] = _RateLimit(times, retry_after_s)

    def fail(self, method: str, *, error: str = "internal_error", times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        with self._lock:
            self.state.failures[method] = [times, error]

    # --- inspection -------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def wait_for(self, predicate, timeout_s: float = 10.0):
        """Block until `predicate(calls)` is truthy (listeners run after the ack); returns its value."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                value = predicate(list(self.state.calls))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake Slack never saw the expected calls; saw {[c.method for c in self.state.calls]}")
                self._changed.wait(left)

    def thread_messages(self, channel: str, thread_ts: str) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self.state.threads.get(channel, {}).get(thread_ts, [])]

    # --- the API ----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def handle(self, method: str, params: dict, authorization: str | None) -> tuple[int, dict, dict]:
        with self._changed:
            self.state.calls.append(ApiCall(method, params, time.time(), authorization))
            self._changed.notify_all()
            limit = self.state.rate_limits.get(method)
            if limit and limit.remaining > 0:
                limit.remaining -= 1
                return 429, {"Retry-After": str(limit.retry_after_s)}, {"ok": False, "error": "ratelimited"}
            failure = self.state.failures.get(method)
            if failure and failure[0] > 0:
                failure[0] -= 1
                return 200, {}, {"ok": False, "error": failure[1]}
            if method == "apps.connections.open":
                return 200, {}, self._connections_open(authorization)
            if method != "auth.test" and authorization != f"Bearer {BOT_TOKEN}":
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            return 200, {}, self._answer(method, params)

    def _connections_open(self, authorization: str | None) -> dict:
        from tests.fakes.slack_socket_mode import APP_TOKEN

        if self.socket_mode is None:
            return {"ok": False, "error": "not_allowed_token_type"}
        if authorization != f"Bearer {APP_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_mode.new_url()}

    def _answer(self, method: str, p: dict) -> dict:
        # Called with the lock held.
        if method == "auth.test":
            return {"ok": True, "url": "https://example.slack.com/", "team": "Test", "user": "docent",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": p.get("text", ""),
                       "blocks": p.get("blocks") or [], "ts": ts}
            thread_ts = p.get("thread_ts")
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.state.threads.setdefault(p["channel"], {}).setdefault(thread_ts or ts, []).append(message)
            return {"ok": True, "channel": p["channel"], "ts": ts, "message": message}
        if method == "chat.update":
            for thread in self.state.threads.get(p["channel"], {}).values():
                for message in thread:
                    if message["ts"] == p["ts"]:
                        message["text"] = p.get("text", message["text"])
                        message["blocks"] = p.get("blocks") or []
                        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": message["text"]}
            return {"ok": False, "error": "message_not_found"}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "reactions.add":
            return {"ok": True}
        if method == "conversations.replies":
            messages = self.state.threads.get(p["channel"], {}).get(p["ts"], [])
            return {"ok": True, "messages": [dict(m) for m in messages], "has_more": False}
        if method == "users.info":
            user = self.state.users.get(p["user"])
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "files.info":
            file = self.state.files.get(p["file"])
            return {"ok": True, "file": self.file_object(file)} if file else {"ok": False, "error": "file_not_found"}
        return {"ok": False, "error": "unknown_method"}

    def download(self, file_id: str, authorization: str | None) -> tuple[int, bytes]:
        with self._changed:
            self.state.downloads.append(file_id)
            self.state.calls.append(ApiCall("files.download", {"file": file_id}, time.time(), authorization))
            self._changed.notify_all()
            file = self.state.files.get(file_id)
        if authorization != f"Bearer {BOT_TOKEN}":
            # Real Slack answers an unauthenticated download with its HTML login page.
            return 200, b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
        if file is None:
            return 404, b""
        return 200, file.content


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of concurrent calls from load tests


def _make_handler(api: FakeSlackApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urllib.parse.urlparse(self.path).path
            if path == "/_calls":
                calls = [{"method": c.method, "params": c.params, "at": c.at} for c in api.calls()]
                self._reply(200, json.dumps(calls).encode(), "application/json")
                return
            if path.startswith("/files/"):
                file_id = path.split("/")[2]
                status, data = api.download(file_id, self.headers.get("Authorization"))
                ctype = "text/html" if data.startswith(b"<!DOCTYPE html>") else "application/octet-stream"
                self._reply(status, data, ctype)
                return
            self._reply(404, b"", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            path = urllib.parse.urlparse(self.path).path
            params = _parse_body(raw, self.headers.get("Content-Type", ""))
            if path.startswith("/response/"):
                api.handle("response_url", {**params, "id": path.rsplit("/", 1)[-1]}, f"Bearer {BOT_TOKEN}")
                self._reply(200, b"ok", "text/plain")
                return
            if not path.startswith("/api/"):
                self._reply(404, b"", "text/plain")
                return
            status, headers, body = api.handle(path[len("/api/"):], params, self.headers.get("Authorization"))
            self._reply(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    return Handler


def _parse_body(raw: str, content_type: str) -> dict:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
    for key in ("blocks", "attachments"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params


# --- signed requests to a Bolt app served over HTTP ------------------------------------------------
_event_ids = itertools.count(1)


def new_event_id() -> str:
    return f"Ev{next(_event_ids):08d}{threading.get_ident() % 10_000:04d}"


def event_body(event: dict, *, event_id: str | None = None, team_id: str = TEAM_ID) -> dict:
    return {
        "token": "unused",
        "team_id": team_id,
        "api_app_id": "A0DOCENT",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def mention_event(text: str, *, user: str = "U0ASKER", channel: str = "C0GENERAL", ts: str = "1700000001.000200",
                  thread_ts: str | None = None, files: list[dict] | None = None) -> dict:
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts,
             "channel": channel, "event_ts": ts, "team": TEAM_ID}
    if thread_ts:
        event["thread_ts"] = thread_ts
    if files:
        event["files"] = files
    return event


def message_event(text: str, *, user: str = "U0ASKER", channel: str = "C0GENERAL", ts: str = "1700000002.000200",
                  thread_ts: str | None = None, channel_type: str = "channel", bot_id: str | None = None,
                  subtype: str | None = None) -> dict:
    event = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
             "event_ts": ts, "channel_type": channel_type, "team": TEAM_ID}
    if thread_ts:
        event["thread_ts"] = thread_ts
    if bot_id:
        event["bot_id"] = bot_id
    if subtype:
        event["subtype"] = subtype
    return event


def sign(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def post_signed(url: str, body: str, *, content_type: str = "application/json", secret: str = SIGNING_SECRET,
                timestamp: int | None = None, retry_num: int | None = None, signature: str | None = None,
                timeout_s: float = 10.0) -> tuple[int, str]:
    """POST like Slack does; returns (status, body). Never raises on HTTP error statuses."""
    headers = {"Content-Type": content_type, **sign(body, secret=secret, timestamp=timestamp)}
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def post_event(url: str, body: dict, **kwargs) -> tuple[int, str]:
    return post_signed(url, json.dumps(body), **kwargs)


def post_form(url: str, fields: dict, **kwargs) -> tuple[int, str]:
    """Slash commands and interactivity payloads arrive form-encoded."""
    return post_signed(url, urllib.parse.urlencode(fields), content_type="application/x-www-form-urlencoded", **kwargs)


def command_fields(text: str, *, user: str = "U0ASKER", channel: str = "C0GENERAL", response_url: str = "",
                   command: str = "/docent") -> dict:
    return {"token": "unused", "team_id": TEAM_ID, "team_domain": "example", "channel_id": channel,
            "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "A0DOCENT", "response_url": response_url,
            "trigger_id": f"trig.{new_event_id()}"}


def interaction_fields(payload: dict) -> dict:
    return {"payload": json.dumps(payload)}


# --- the bot under test -----------------------------------------------------------------------------
class SlackBotHarness:
    """The real Bolt app over HTTP on loopback, pointed at a FakeSlackApi; see `serve`."""

    def __init__(self, url: str, app, slack: FakeSlackApi):
        self.url = url
        self.app = app
        self.connector = app.docent_connector
        self.slack = slack

    def send(self, event: dict, **kwargs) -> tuple[int, dict, str]:
        body = event_body(event, event_id=kwargs.pop("event_id", None))
        status, text = post_event(self.url, body, **kwargs)
        return status, body, text

    def settle(self) -> None:
        assert self.connector.wait_idle(60), "listeners/answers still running after 60 s"

    def answer_for(self, event_ts: str, channel: str = "C0GENERAL", timeout_s: float = 30) -> dict:
        """Wait for docent's final message in the thread of `event_ts` (the updated placeholder)."""

        def final(calls):
            for call in calls:
                if call.method == "chat.update" and call.params.get("channel") == channel:
                    blocks_ = call.params.get("blocks") or []
                    if any(b.get("type") == "context" and "writing" in json.dumps(b) for b in blocks_):
                        continue
                    placeholder = self.placeholder_ts(event_ts, channel)
                    if placeholder and call.params.get("ts") == placeholder:
                        return call.params
            return None

        return self.slack.wait_for(final, timeout_s)

    def placeholder_ts(self, event_ts: str, channel: str = "C0GENERAL") -> str | None:
        for m in self.slack.thread_messages(channel, event_ts):
            if m.get("bot_id") == BOT_ID:
                return m["ts"]
        return None

    def posts(self, channel: str | None = None) -> list:
        return [c for c in self.slack.calls("chat.postMessage") if channel is None or c.params["channel"] == channel]


@contextmanager
def serve(docent, settings, slack: FakeSlackApi):
    """docent's Bolt app over signed HTTP on loopback, talking to `slack`; closed (drained) on exit."""
    from pydantic import SecretStr

    from connectors.slack.app import build_app, make_http_server, make_web_client

    settings = settings.model_copy(
        update={"slack_api_url": slack.api_url, "slack_bot_token": SecretStr(BOT_TOKEN),
                "slack_signing_secret": SecretStr(SIGNING_SECRET)}
    )
    app = build_app(docent, settings, client=make_web_client(settings))
    server = make_http_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SlackBotHarness(f"http://127.0.0.1:{server.server_port}/slack/events", app, slack)
    finally:
        server.shutdown()
        server.server_close()
        app.docent_connector.close(drain_s=30)
