"""A loopback fake of the Slack Web API, plus helpers to send signed Events API requests.

Serves the methods docent calls (auth.test, chat.postMessage, chat.update, chat.postEphemeral,
chat.startStream / appendStream / stopStream, assistant.threads.setStatus / setTitle /
setSuggestedPrompts, reactions.add, conversations.replies, users.info, files.info, oauth.v2.access),
the file download URL (checks the bot token), response_url posts, and scriptable 429s with
Retry-After. Blocks are checked the way Slack checks them (types, sizes, the 12,000-character
budget of `markdown` blocks, feedback buttons …) and refused with `invalid_blocks` and Slack's
`response_metadata.messages`. Several workspaces each have their own bot token (`add_team`).

`FakeSlackApi()` is a workspace whose app has no AI-app features (the classic surface):
chat.startStream answers `feature_not_enabled`, `markdown` and `context_actions` blocks are
unsupported, assistant.threads.* answer `not_allowed_token_type`. `FakeSlackApi(agent_features=True)`
accepts them all; `refuse(method, error, team=…)` and `unsupport(block_type, team=…)` take them
away again per workspace, to test each fallback.
Every call is recorded; `GET /_calls` returns them as JSON so other processes can be counted.
With `socket_mode=` (a `tests.fakes.slack_socket_mode.FakeSocketMode`) it also answers
`apps.connections.open` for the app token with that server's websocket URLs.
"""

from __future__ import annotations

import base64
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


CLIENT_ID = "1111.2222"
CLIENT_SECRET = "test-client-secret"
AGENT_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream",
                 "assistant.threads.setStatus", "assistant.threads.setTitle", "assistant.threads.setSuggestedPrompts")
AI_BLOCK_TYPES = ("markdown", "context_actions")
KNOWN_BLOCK_TYPES = {"section", "context", "actions", "divider", "header", "rich_text", "image", *AI_BLOCK_TYPES}
MARKDOWN_BUDGET = 12_000  # all markdown blocks of one message together
STREAM_TEXT_LIMIT = 12_000  # markdown_text per call


@dataclass
class ApiCall:
    method: str
    params: dict
    at: float
    authorization: str | None = None
    team: str | None = None  # the workspace whose token made the call
    ok: bool = True  # what the fake answered
    error: str | None = None


@dataclass
class FakeTeam:
    id: str
    token: str
    bot_user_id: str
    bot_id: str
    name: str = "Test"
    revoked: bool = False


@dataclass
class OAuthGrant:
    """What oauth.v2.access hands out for one authorization code."""

    team: FakeTeam
    installer: str = "U0INSTALLER"
    scope: str = "app_mentions:read,chat:write"


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
    teams: dict[str, FakeTeam] = field(default_factory=dict)  # token → team
    refusals: dict[tuple[str, str | None], str] = field(default_factory=dict)  # (method, team|None) → error
    unsupported: dict[str | None, set[str]] = field(default_factory=dict)  # team|None → block types refused
    oauth_codes: dict[str, OAuthGrant] = field(default_factory=dict)


class FakeSlackApi:
    """Start with `with FakeSlackApi() as slack:`; `slack.api_url` goes into settings.slack_api_url."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, socket_mode=None, agent_features: bool = False):
        self.socket_mode = socket_mode
        self.state = FakeSlackState()
        self._lock = threading.RLock()  # wait_for predicates may read state under the lock
        self.add_team(TEAM_ID, token=BOT_TOKEN, bot_user_id=BOT_USER_ID, bot_id=BOT_ID)
        if not agent_features:
            for method in AGENT_METHODS:
                error = "feature_not_enabled" if method.startswith("chat.") else "not_allowed_token_type"
                self.state.refusals[(method, None)] = error
            self.state.unsupported[None] = set(AI_BLOCK_TYPES)
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
    def add_team(self, team_id: str, *, token: str, bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID,
                 name: str = "Test") -> FakeTeam:
        """A workspace and the bot token docent holds for it."""
        team = FakeTeam(team_id, token, bot_user_id, bot_id, name)
        with self._lock:
            self.state.teams[token] = team
        return team

    def grant_oauth_code(self, code: str, team: FakeTeam, *, installer: str = "U0INSTALLER",
                         scope: str = "app_mentions:read,chat:write") -> None:
        """oauth.v2.access will exchange `code` (with the app's client id/secret) for `team`'s token."""
        with self._lock:
            self.state.oauth_codes[code] = OAuthGrant(team, installer, scope)
            self.state.teams.pop(team.token, None)  # the token exists once the code is exchanged

    def revoke_team(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens answer `token_revoked` from now on."""
        with self._lock:
            for team in self.state.teams.values():
                if team.id == team_id:
                    team.revoked = True

    def refuse(self, method: str, error: str = "not_allowed_token_type", *, team: str | None = None) -> None:
        """Every call of `method` (by `team`, or by anyone) answers `{"ok": false, "error": error}`."""
        with self._lock:
            self.state.refusals[(method, team)] = error

    def allow(self, method: str, *, team: str | None = None) -> None:
        with self._lock:
            self.state.refusals.pop((method, team), None)

    def unsupport(self, block_type: str, *, team: str | None = None) -> None:
        """Messages carrying `block_type` (by `team`, or by anyone) are refused as `invalid_blocks`."""
        with self._lock:
            self.state.unsupported.setdefault(team, set()).add(block_type)

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

    def message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            found = self._find(channel, ts)
            return dict(found) if found else None

    # --- the API ----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def handle(self, method: str, params: dict, authorization: str | None) -> tuple[int, dict, dict]:
        with self._changed:
            team = self.state.teams.get((authorization or "").removeprefix("Bearer "))
            call = ApiCall(method, params, time.time(), authorization, team.id if team else None)
            self.state.calls.append(call)
            self._changed.notify_all()
            status, headers, body = self._handle(method, params, authorization, team)
            call.ok, call.error = bool(body.get("ok")), body.get("error")
            return status, headers, body

    def _handle(self, method: str, params: dict, authorization: str | None,
                team: FakeTeam | None) -> tuple[int, dict, dict]:
        # Called with the lock held.
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
        if method == "oauth.v2.access":
            return 200, {}, self._oauth_access(params, authorization)
        if method == "response_url":
            return 200, {}, self._answer(method, params, None)
        if team is None:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if team.revoked:
            return 200, {}, {"ok": False, "error": "token_revoked"}
        refusal = self.state.refusals.get((method, team.id)) or self.state.refusals.get((method, None))
        if refusal:
            return 200, {}, {"ok": False, "error": refusal}
        return 200, {}, self._answer(method, params, team)

    def _oauth_access(self, params: dict, authorization: str | None) -> dict:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return {"ok": False, "error": "invalid_client_id"}
        grant = self.state.oauth_codes.pop(params.get("code", ""), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        self.state.teams[grant.team.token] = grant.team
        return {"ok": True, "app_id": "A0DOCENT", "authed_user": {"id": grant.installer}, "scope": grant.scope,
                "token_type": "bot", "access_token": grant.team.token, "bot_user_id": grant.team.bot_user_id,
                "team": {"id": grant.team.id, "name": grant.team.name}, "enterprise": None,
                "is_enterprise_install": False}

    def _connections_open(self, authorization: str | None) -> dict:
        from tests.fakes.slack_socket_mode import APP_TOKEN

        if self.socket_mode is None:
            return {"ok": False, "error": "not_allowed_token_type"}
        if authorization != f"Bearer {APP_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_mode.new_url()}

    def _answer(self, method: str, p: dict, team: FakeTeam | None) -> dict:
        # Called with the lock held.
        if method == "auth.test":
            return {"ok": True, "url": "https://example.slack.com/", "team": team.name, "user": "docent",
                    "team_id": team.id, "user_id": team.bot_user_id, "bot_id": team.bot_id}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.stopStream", "response_url"):
            refused = self._check_message(p, team)
            if refused:
                return refused
        if method == "response_url":
            return {"ok": True}
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "user": team.bot_user_id, "bot_id": team.bot_id, "text": p.get("text", ""),
                       "blocks": p.get("blocks") or [], "ts": ts, "posted_text": p.get("text", "")}
            thread_ts = p.get("thread_ts")
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.state.threads.setdefault(p["channel"], {}).setdefault(thread_ts or ts, []).append(message)
            return {"ok": True, "channel": p["channel"], "ts": ts, "message": message}
        if method == "chat.update":
            message = self._find(p["channel"], p["ts"])
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            if message.get("streaming"):
                return {"ok": False, "error": "cant_update_message"}
            message["text"] = p.get("text", message["text"])
            message["blocks"] = p.get("blocks") or []
            message.pop("stream_text", None)  # an update replaces the streamed text as well
            return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": message["text"]}
        if method == "chat.startStream":
            return self._start_stream(p, team)
        if method in ("chat.appendStream", "chat.stopStream"):
            return self._continue_stream(method, p)
        if method.startswith("assistant.threads."):
            return self._assistant(method, p)
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

    def _find(self, channel: str, ts: str) -> dict | None:
        for thread in self.state.threads.get(channel, {}).values():
            for message in thread:
                if message["ts"] == ts:
                    return message
        return None

    # --- streaming -----------------------------------------------------------------------------------
    @staticmethod
    def _stream_text(p: dict) -> tuple[str, str | None]:
        """The markdown a start/append/stop call adds, or an error Slack would answer."""
        parts = [p["markdown_text"]] if p.get("markdown_text") else []
        for chunk in p.get("chunks") or []:
            kind = chunk.get("type")
            if kind == "markdown_text":
                parts.append(chunk.get("text", ""))
            elif kind not in ("task_update", "plan_update", "blocks"):
                return "", "invalid_chunks"
        text = "".join(parts)
        if any(len(part) > STREAM_TEXT_LIMIT for part in parts):
            return "", "msg_too_long"
        return text, None

    def _start_stream(self, p: dict, team: FakeTeam) -> dict:
        channel, thread_ts = p.get("channel"), p.get("thread_ts")
        if not channel or not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if not channel.startswith("D") and not (p.get("recipient_user_id") and p.get("recipient_team_id")):
            # Outside a DM Slack needs to know whose stream it is.
            return {"ok": False, "error": "invalid_arguments"}
        text, error = self._stream_text(p)
        if error:
            return {"ok": False, "error": error}
        ts = self._next_ts()
        message = {"type": "message", "user": team.bot_user_id, "bot_id": team.bot_id, "text": text, "blocks": [],
                   "ts": ts, "thread_ts": thread_ts, "streaming": True, "stream_text": text}
        self.state.threads.setdefault(channel, {}).setdefault(thread_ts, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts}

    def _continue_stream(self, method: str, p: dict) -> dict:
        message = self._find(p.get("channel", ""), p.get("ts", ""))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        text, error = self._stream_text(p)
        if error:
            return {"ok": False, "error": error}
        if len(message["stream_text"]) + len(text) > STREAM_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        message["stream_text"] += text
        message["text"] = message["stream_text"]
        if method == "chat.stopStream":
            message["streaming"] = False
            message["blocks"] = p.get("blocks") or []
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def _assistant(self, method: str, p: dict) -> dict:
        if not p.get("channel_id") or not p.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("setSuggestedPrompts"):
            prompts = p.get("prompts") or []
            if not 1 <= len(prompts) <= 4 or not all(x.get("title") and x.get("message") for x in prompts):
                return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("setTitle") and not p.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("setStatus") and "status" not in p:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    # --- Block Kit, checked as Slack checks it --------------------------------------------------------
    def _check_message(self, p: dict, team: FakeTeam | None) -> dict | None:
        if len(p.get("text") or "") > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        blocks = p.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        unsupported = self.state.unsupported.get(None, set()) | self.state.unsupported.get(team.id if team else None,
                                                                                           set())
        problems = block_problems(blocks, unsupported)
        if problems:
            return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": problems}}
        return None

    def download(self, file_id: str, authorization: str | None) -> tuple[int, bytes]:
        with self._changed:
            self.state.downloads.append(file_id)
            self.state.calls.append(ApiCall("files.download", {"file": file_id}, time.time(), authorization))
            self._changed.notify_all()
            file = self.state.files.get(file_id)
        team = self.state.teams.get((authorization or "").removeprefix("Bearer "))
        if team is None or team.revoked:
            # Real Slack answers an unauthenticated download with its HTML login page.
            return 200, b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
        if file is None:
            return 404, b""
        return 200, file.content


def block_problems(blocks: list, unsupported: set[str] = frozenset()) -> list[str]:
    """What Slack would say about these blocks, as its `response_metadata.messages` ("[ERROR] …
    [json-pointer:/blocks/3/text]"); empty when it would accept them."""
    problems: list[str] = []

    def bad(message: str, pointer: str) -> None:
        problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def text_object(obj, pointer: str, limit: int, kinds=("plain_text", "mrkdwn")) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
            bad("must be a text object", pointer)
        elif not obj["text"] or len(obj["text"]) > limit:
            bad(f"must be between 1 and {limit} characters", pointer + "/text")

    if len(blocks) > 50:
        bad("no more than 50 items allowed", "/blocks")
    markdown_chars = 0
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES or kind in unsupported:
            bad(f"unsupported type: {kind}", at + "/type")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > 255 or block_id in block_ids:
                bad("block_id must be unique and at most 255 characters", at + "/block_id")
            block_ids.add(block_id)
        if kind == "section":
            text_object(block.get("text"), at + "/text", 3000)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                bad("must provide a string", at + "/text")
            else:
                markdown_chars += len(text)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                bad("must have between 1 and 10 elements", at + "/elements")
            for j, element in enumerate(elements):
                text_object(element, f"{at}/elements/{j}", 2000)
        elif kind in ("actions", "context_actions"):
            elements = block.get("elements") or []
            most = 25 if kind == "actions" else 5
            if not 1 <= len(elements) <= most:
                bad(f"must have between 1 and {most} elements", at + "/elements")
            for j, element in enumerate(elements):
                where = f"{at}/elements/{j}"
                allowed = ("button",) if kind == "actions" else ("feedback_buttons", "icon_button")
                if element.get("type") not in allowed:
                    bad(f"unsupported type: {element.get('type')}", where + "/type")
                    continue
                if len(element.get("action_id") or "") > 255:
                    bad("must be at most 255 characters", where + "/action_id")
                if element["type"] == "feedback_buttons":
                    for side in ("positive_button", "negative_button"):
                        button = element.get(side) or {}
                        text_object(button.get("text"), f"{where}/{side}/text", 75, ("plain_text",))
                        if not button.get("value") or len(button["value"]) > 2000:
                            bad("must be between 1 and 2000 characters", f"{where}/{side}/value")
                else:
                    text_object(element.get("text"), where + "/text", 75, ("plain_text",))
                    if len(element.get("value") or "") > 2000:
                        bad("must be at most 2000 characters", where + "/value")
    if markdown_chars > MARKDOWN_BUDGET:
        bad(f"markdown blocks may hold {MARKDOWN_BUDGET} characters in all", "/blocks")
    return problems


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
                calls = [{"method": c.method, "params": c.params, "at": c.at, "ok": c.ok, "team": c.team}
                         for c in api.calls()]
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
                status, _, body = api.handle("response_url", {**params, "id": path.rsplit("/", 1)[-1]}, None)
                if body.get("ok"):
                    self._reply(200, b"ok", "text/plain")
                else:  # Slack answers a refused response_url post with a 400 and the reason
                    self._reply(400, body.get("error", "invalid_blocks").encode(), "text/plain")
                return
            if not path.startswith("/api/"):
                self._reply(404, b"", "text/plain")
                return
            authorization = self.headers.get("Authorization")
            if not authorization and params.get("token"):
                authorization = f"Bearer {params['token']}"  # a token passed in the body
            status, headers, body = api.handle(path[len("/api/"):], params, authorization)
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


def streamed_view(message: dict) -> dict:
    """A natively streamed message as chat.postMessage params would show it: the streamed markdown
    as a `markdown` block, then the blocks it was stopped with."""
    blocks_ = [{"type": "markdown", "text": message["stream_text"]}] if message.get("stream_text") else []
    return {"channel": None, "ts": message["ts"], "text": message.get("stream_text", ""),
            "blocks": blocks_ + list(message.get("blocks") or []), "streamed": True}


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

    def send(self, event: dict, *, team_id: str = TEAM_ID, **kwargs) -> tuple[int, dict, str]:
        body = event_body(event, event_id=kwargs.pop("event_id", None), team_id=team_id)
        status, text = post_event(self.url, body, **kwargs)
        return status, body, text

    def settle(self) -> None:
        assert self.connector.wait_idle(60), "listeners/answers still running after 60 s"

    def answer_for(self, event_ts: str, channel: str = "C0GENERAL", timeout_s: float = 30) -> dict:
        """Wait for docent's final message in the thread of `event_ts`: the placeholder's last
        accepted update, or its native stream once stopped (then `blocks` are the streamed text as a
        markdown block followed by the blocks the stream was stopped with)."""

        def final(calls):
            for call in calls:
                if not call.ok or call.params.get("channel") != channel:
                    continue
                if call.method == "chat.update":
                    blocks_ = call.params.get("blocks") or []
                    if any(b.get("type") == "context" and "writing" in json.dumps(b) for b in blocks_):
                        continue
                    placeholder = self.placeholder_ts(event_ts, channel)
                    if placeholder and call.params.get("ts") == placeholder:
                        return call.params
                if call.method == "chat.stopStream":
                    message = self.slack.message(channel, call.params["ts"])
                    if message and message.get("thread_ts") == event_ts and "stream_text" in message:
                        return streamed_view(message)
            return None

        return self.slack.wait_for(final, timeout_s)

    def placeholder_ts(self, event_ts: str, channel: str = "C0GENERAL") -> str | None:
        ours = [m for m in self.slack.thread_messages(channel, event_ts) if m.get("bot_id")]
        for m in ours:
            if m.get("posted_text") == "Looking through the documents…":
                return m["ts"]
        return ours[0]["ts"] if ours else None

    def posts(self, channel: str | None = None) -> list:
        return [c for c in self.slack.calls("chat.postMessage") if channel is None or c.params["channel"] == channel]


def block_action(action: dict, *, user: str = "U0ASKER", channel: str = "C0GENERAL", team: str = TEAM_ID,
                 response_url: str = "", message_ts: str | None = None) -> dict:
    """A block_actions interaction payload for one clicked element."""
    payload = {"type": "block_actions", "trigger_id": f"trig.{new_event_id()}", "team": {"id": team},
               "user": {"id": user}, "channel": {"id": channel}, "actions": [action],
               "container": {"type": "message", "message_ts": message_ts} if message_ts else {"type": "message"}}
    if response_url:
        payload["response_url"] = response_url
    return payload


def message_shortcut(callback_id: str, message: dict, *, user: str = "U0ASKER", channel: str = "C0GENERAL",
                     team: str = TEAM_ID, response_url: str = "") -> dict:
    return {"type": "message_action", "callback_id": callback_id, "trigger_id": f"trig.{new_event_id()}",
            "team": {"id": team}, "channel": {"id": channel}, "user": {"id": user}, "message": message,
            "response_url": response_url}


def assistant_thread_started(*, user: str = "U0ASKER", dm: str = "D0ASSIST", thread_ts: str = "1700009000.000100",
                             viewing: str | None = "C0GENERAL", team: str = TEAM_ID) -> dict:
    context = {"channel_id": viewing, "team_id": team, "enterprise_id": None} if viewing else {}
    return {"type": "assistant_thread_started", "event_ts": thread_ts,
            "assistant_thread": {"user_id": user, "context": context, "channel_id": dm, "thread_ts": thread_ts}}


@contextmanager
def serve(docent, settings, slack: FakeSlackApi, *, distributed: bool = False):
    """docent's Bolt app over signed HTTP on loopback, talking to `slack`; closed (drained) on exit.
    `distributed`: Bolt's OAuth flow with per-workspace tokens instead of the one bot token."""
    from pydantic import SecretStr

    from connectors.slack.app import build_app, make_http_server, make_web_client

    update = {"slack_api_url": slack.api_url, "slack_signing_secret": SecretStr(SIGNING_SECRET)}
    if distributed:
        update |= {"slack_client_id": CLIENT_ID, "slack_client_secret": SecretStr(CLIENT_SECRET),
                   "slack_bot_token": None}
    else:
        update["slack_bot_token"] = SecretStr(BOT_TOKEN)
    settings = settings.model_copy(update=update)
    app = build_app(docent, settings) if distributed else build_app(docent, settings, client=make_web_client(settings))
    server = make_http_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        harness = SlackBotHarness(f"http://127.0.0.1:{server.server_port}/slack/events", app, slack)
        harness.base_url = f"http://127.0.0.1:{server.server_port}"
        yield harness
    finally:
        server.shutdown()
        server.server_close()
        app.docent_connector.close(drain_s=30)
