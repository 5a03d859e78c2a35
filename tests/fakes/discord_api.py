"""A loopback stand-in for Discord's REST API, and INTERACTION_CREATE payloads to feed the real client.

The real discord.py client talks to this server once `discord.http.Route.BASE` points at
`FakeDiscordAPI.api_base`. It answers only what docent's connector uses (login, interaction
callbacks, webhook follow-ups and edits, channel messages and their history, threads started
from a message, attachment downloads) and records every call so a test can assert what the bot
sent. Messages docent sends are kept per channel (public interaction replies under the
interaction's channel, with `interaction_metadata` naming who asked), so reading a channel's or
thread's history returns them the way Discord would. Replies are JSON with `Content-Type: application/json` exactly —
with a charset suffix discord.py would treat the body as text (see FACTS.md).

It also serves a minimal gateway at `/gateway` (what `GET /gateway/bot` points to): HELLO,
heartbeat acks, READY after IDENTIFY, RESUMED after RESUME, and `dispatch(event, data)` to send
INTERACTION_CREATE / MESSAGE_CREATE the way Discord does — for a client run as users run it.
`ThreadedFakeDiscord` runs the whole fake on its own loop in a thread (for sync tests and bots in
subprocesses).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APPLICATION_ID = 900_000_000_000_000_001
BOT_USER_ID = 900_000_000_000_000_002
OWNER_ID = 900_000_000_000_000_003
API_VERSION_PATH = "/api/v10"

_snowflakes = itertools.count(1_100_000_000_000_000_000)


def next_snowflake() -> int:
    return next(_snowflakes)


@dataclass
class RecordedCall:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any  # the JSON body, or multipart's payload_json
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly application/json: aiohttp's json_response would add "; charset=utf-8".
    return web.Response(status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})


def _user(user_id: int, name: str, *, bot: bool = False) -> dict:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


class FakeDiscordAPI:
    """Start with `await api.start()` inside the test's event loop; `await api.stop()` at the end."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.files: dict[str, bytes] = {}  # attachment downloads: path → bytes
        self.failing_files: set[str] = set()  # paths that answer 500 (a failed download)
        self.downloads: list[str] = []  # attachment paths fetched, in order
        self.streamed_files: dict[str, int] = {}  # paths sent chunked (no length): path → bytes to send
        self.bytes_sent: dict[str, int] = {}  # streamed path → bytes written before it ended
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None  # made in the serving loop by start()
        self.messages: dict[str, dict] = {}  # message id → latest message object
        self.channel_messages: dict[str, list[dict]] = {}  # channel id → its messages, oldest first
        self.interactions: dict[str, dict] = {}  # token → the INTERACTION_CREATE payload (for replies' channel)
        self.originals: dict[str, str] = {}  # token → id of the interaction's original response message
        self.threads: dict[str, dict] = {}  # thread id (= the message it was started from) → thread object
        self.guild_id = "800000000000000001"  # the guild threads are created in
        self.refuse_threads: tuple[int, int] | None = None  # (HTTP status, Discord error code) for thread creation
        self.refuse_callback_types: set[int] = set()  # interaction callback types answered 400 (e.g. {9}: modals)
        self.gateway_sessions: list[web.WebSocketResponse] = []  # identified (or resumed) sessions
        self._sequence = itertools.count(1)
        self._query: dict[str, str] = {}

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_VERSION_PATH

    async def start(self) -> "FakeDiscordAPI":
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/files/{name:.*}", self._serve_file)
        app.router.add_route("*", API_VERSION_PATH + "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in self.gateway_sessions:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- the gateway ------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for message in ws:
            frame = json.loads(message.data)
            op = frame.get("op")
            if op == 1:  # heartbeat
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:  # identify
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": {
                    "v": 10, "user": _user(BOT_USER_ID, "docent", bot=True), "guilds": [],
                    "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(APPLICATION_ID), "flags": 0}, "shard": [0, 1],
                }}))
                await self._identified(ws)
            elif op == 6:  # resume
                await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": next(self._sequence), "d": {}}))
                await self._identified(ws)
        if ws in self.gateway_sessions:
            self.gateway_sessions.remove(ws)
        return ws

    async def _identified(self, ws: web.WebSocketResponse) -> None:
        self.gateway_sessions.append(ws)
        async with self._changed:
            self._changed.notify_all()

    async def dispatch(self, event: str, data: dict) -> None:
        """Send one gateway DISPATCH (e.g. "INTERACTION_CREATE") to the newest identified session."""
        await self.wait_for(lambda: bool(self.gateway_sessions))
        await self.gateway_sessions[-1].send_str(json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data}))

    # --- attachment downloads -----------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> str:
        """Serve `data` for download; returns its URL (what Discord's CDN URL would be)."""
        self.files[name] = data
        return f"{self.base_url}/files/{name}"

    def stream_file(self, name: str, size: int) -> str:
        """Serve `size` bytes of text chunked, without a Content-Length (the size is only known
        by reading); `bytes_sent[name]` tells how much went out before the reader hung up."""
        self.streamed_files[name] = size
        return f"{self.base_url}/files/{name}"

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.downloads.append(name)
        if name in self.failing_files:
            return web.Response(status=500, text="boom")
        if name in self.streamed_files:
            return await self._stream(request, name, self.streamed_files[name])
        if name not in self.files:
            return web.Response(status=404, text="not found")
        return web.Response(body=self.files[name], headers={"Content-Type": "application/octet-stream"})

    async def _stream(self, request: web.Request, name: str, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"lorem ipsum " * 5461  # ~64 KB
        self.bytes_sent[name] = 0
        try:
            while self.bytes_sent[name] < size:
                part = block[: size - self.bytes_sent[name]]
                await response.write(part)
                self.bytes_sent[name] += len(part)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client stopped reading: what a size limit should do
        return response

    # --- REST ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        call = RecordedCall(request.method, path, dict(request.query), body, files)
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()
        self._query = call.query
        return self._respond(request.method, path, body)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[str, bytes]]:
        if not request.can_read_body:
            return None, {}
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: dict[str, bytes] = {}
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    payload = json.loads(data)
                else:
                    files[part.filename or part.name or "file"] = bytes(data)  # type: ignore[union-attr]
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), {}

    def _respond(self, method: str, path: str, body: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return _json(_user(BOT_USER_ID, "docent", bot=True))
        if path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APPLICATION_ID),
                    "name": "docent",
                    "icon": None,
                    "description": "",
                    "verify_key": "0" * 64,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": _user(OWNER_ID, "owner"),
                    "interactions_endpoint_url": None,
                    "flags": 0,
                }
            )
        if path == "/gateway/bot":
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands":
            if method == "PUT":  # bulk overwrite: echo the commands back with ids
                # Discord answers context-menu commands with an empty description.
                return _json([{"description": "", **c, "id": str(next_snowflake()),
                               "application_id": str(APPLICATION_ID), "version": "1"} for c in body or []])
            return _json([])
        if parts[0] == "interactions" and parts[-1] == "callback":
            interaction_id = parts[1]
            if (body or {}).get("type") in self.refuse_callback_types:
                return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
            data = (body or {}).get("data") or {}
            return _json(
                {
                    "interaction": {
                        "id": interaction_id,
                        "type": 2,
                        "response_message_loading": (body or {}).get("type") == 5,
                        "response_message_ephemeral": bool(int(data.get("flags", 0) or 0) & 64),
                    }
                }
            )
        if parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if parts[0] == "channels" and len(parts) == 5 and parts[2] == "messages" and parts[4] == "threads":
            return self._start_thread(parts[1], parts[3], body or {})
        if parts[0] == "channels" and parts[-1] == "messages" and method == "POST":
            return _json(self._store_message(str(next_snowflake()), body, channel_id=parts[1]))
        if parts[0] == "channels" and parts[-1] == "messages" and method == "GET":
            return _json(self._history(parts[1], int(self._query.get("limit", 50))))
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages" and method == "GET":
            found = next((m for m in self.channel_messages.get(parts[1], []) if m["id"] == parts[3]), None)
            return _json(found) if found else _json({"message": "Unknown Message", "code": 10008}, status=404)
        if parts[0] == "webhooks" and len(parts) >= 3:
            token = parts[2]
            if method == "POST":
                return _json(self._store_message(str(next_snowflake()), body, token=token))
            if len(parts) == 5 and parts[3] == "messages":
                message_id = self._original_id(token) if parts[4] == "@original" else parts[4]
                if method == "PATCH":
                    return _json(self._store_message(message_id, body, token=token))
                if method == "DELETE":
                    return web.Response(status=204)
                return _json(self.messages.get(message_id) or self._store_message(message_id, {}, token=token))
        return _json({"message": f"fake Discord API does not know {method} {path}", "code": 0}, status=404)

    def _original_id(self, token: str) -> str:
        if token not in self.originals:
            # A component's interaction edits the message the component is on.
            message = (self.interactions.get(token) or {}).get("message") or {}
            self.originals[token] = message.get("id") or str(next_snowflake())
        return self.originals[token]

    def _start_thread(self, channel_id: str, message_id: str, body: dict) -> web.Response:
        if self.refuse_threads is not None:
            status, code = self.refuse_threads
            return _json({"message": "Missing Permissions", "code": code}, status=status)
        if message_id in self.threads:
            return _json({"message": "A thread has already been created for this message", "code": 160004},
                         status=400)
        thread = thread_channel(int(message_id), parent_id=int(channel_id), guild_id=int(self.guild_id),
                                name=body.get("name", ""))
        thread["thread_metadata"]["auto_archive_duration"] = body.get("auto_archive_duration", 1440)
        self.threads[message_id] = thread
        return _json(thread)

    def _history(self, channel_id: str, limit: int) -> list[dict]:
        """Newest first, as GET /channels/{id}/messages answers."""
        return list(reversed(self.channel_messages.get(channel_id, [])))[:limit]

    def add_channel_message(self, channel_id: int | str, message: dict) -> dict:
        """Put a message (e.g. from `channel_message`) into a channel's history."""
        message = {**message, "channel_id": str(channel_id)}
        self.channel_messages.setdefault(str(channel_id), []).append(message)
        self.messages[message["id"]] = message
        return message

    def _store_message(self, message_id: str, body: Any, *, channel_id: str | None = None,
                       token: str | None = None) -> dict:
        body = body or {}
        interaction = self.interactions.get(token or "") or {}
        previous = self.messages.get(message_id, {})
        channel_id = channel_id or interaction.get("channel_id") or previous.get("channel_id") or "1"
        message = {
            "id": message_id,
            "channel_id": channel_id,
            "author": _user(BOT_USER_ID, "docent", bot=True),
            "content": body.get("content", previous.get("content", "")) or "",
            "timestamp": "2026-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds", previous.get("embeds", [])) or [],
            "components": body.get("components", previous.get("components", [])) or [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags", 0) or 0),
            "application_id": str(APPLICATION_ID),
        }
        if interaction and interaction.get("type") == 2:
            asker = (interaction.get("member") or {}).get("user") or interaction.get("user")
            message["interaction_metadata"] = {"id": interaction["id"], "type": 2, "user": asker,
                                               "authorizing_integration_owners": {}}
        elif previous.get("interaction_metadata"):
            message["interaction_metadata"] = previous["interaction_metadata"]
        self.messages[message_id] = message
        if not message["flags"] & 64:  # ephemeral messages are in no channel's history
            history = self.channel_messages.setdefault(channel_id, [])
            at = next((i for i, m in enumerate(history) if m["id"] == message_id), None)
            if at is None:
                history.append(message)
            else:
                history[at] = message
        return message

    # --- what tests look at ------------------------------------------------------------
    def calls_for(self, token: str) -> list[RecordedCall]:
        """Every callback, follow-up and edit made for one interaction (matched by its token)."""
        return [c for c in self.calls if f"/{token}/" in c.path + "/" or c.path.endswith(f"/{token}")]

    def callback_for(self, token: str) -> RecordedCall | None:
        return next((c for c in self.calls_for(token) if c.path.endswith("/callback")), None)

    def replies_for(self, token: str) -> list[RecordedCall]:
        """Follow-ups (POST) and edits (PATCH) of webhook messages for one interaction."""
        return [c for c in self.calls_for(token) if c.path.startswith("/webhooks/")]

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        """Wait until `predicate()` holds (re-checked on every recorded call)."""
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)


# --- INTERACTION_CREATE payloads --------------------------------------------------------

ADMINISTRATOR_PERMS = str(0x8 | 0x20)  # administrator | manage_guild
MEMBER_PERMS = str(0x400 | 0x800 | 0x8000)  # view channel | send messages | attach files
# What docent's invite grants in a channel: view, send, embed links, read history, create public
# threads, send messages in threads.
BOT_THREAD_PERMS = str(0x400 | 0x800 | 0x4000 | 0x10000 | (1 << 35) | (1 << 38))


def _member(user_id: int, *, permissions: str, roles: tuple[int, ...] = ()) -> dict:
    return {
        "user": _user(user_id, f"user{user_id % 1000}"),
        "roles": [str(r) for r in roles],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "permissions": permissions,
        "nick": None,
        "avatar": None,
    }


def _channel(channel_id: int, guild_id: int | None, *, thread_parent: int | None = None) -> dict:
    if guild_id is None:
        return {"id": str(channel_id), "type": 1, "recipients": []}
    if thread_parent is not None:
        return {
            "id": str(channel_id),
            "type": 11,  # public thread
            "guild_id": str(guild_id),
            "parent_id": str(thread_parent),
            "name": "a thread",
            "owner_id": str(OWNER_ID),
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": "2026-01-01T00:00:00+00:00", "locked": False},
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": "general",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "rate_limit_per_user": 0,
        "topic": None,
        "flags": 0,
    }


def thread_channel(thread_id: int, *, parent_id: int, owner_id: int = BOT_USER_ID,
                   guild_id: int = 800_000_000_000_000_001, name: str = "a thread") -> dict:
    """A public thread's channel object (as THREAD_CREATE carries it), started by `owner_id`."""
    return {**_channel(thread_id, guild_id, thread_parent=parent_id), "owner_id": str(owner_id), "name": name}


def _base(
    interaction_type: int,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int,
    admin: bool,
    roles: tuple[int, ...],
    thread_parent: int | None,
    app_permissions: str = "0",
) -> dict:
    interaction_id = next_snowflake()
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(APPLICATION_ID),
        "type": interaction_type,
        "token": f"tok{interaction_id}",
        "version": 1,
        "attachment_size_limit": 25 * 1024 * 1024,
        "locale": "en-US",
        "channel_id": str(channel_id),
        "channel": _channel(channel_id, guild_id, thread_parent=thread_parent),
        "app_permissions": app_permissions,
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild_id)} if guild_id else {"1": str(user_id)},
        "context": 0 if guild_id else 1,
    }
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild_locale"] = "en-US"
        payload["member"] = _member(user_id, permissions=ADMINISTRATOR_PERMS if admin else MEMBER_PERMS, roles=roles)
    else:
        payload["user"] = _user(user_id, f"user{user_id % 1000}")
    return payload


def slash_command(
    name: str,
    options: list[dict] | None = None,
    *,
    subcommand: str | None = None,
    user_id: int = 700_000_000_000_000_001,
    guild_id: int | None = 800_000_000_000_000_001,
    channel_id: int = 810_000_000_000_000_001,
    admin: bool = False,
    roles: tuple[int, ...] = (),
    thread_parent: int | None = None,
    attachments: dict[str, dict] | None = None,
    users: dict[str, dict] | None = None,
    autocomplete: bool = False,
    app_permissions: str = "0",
) -> dict:
    """An INTERACTION_CREATE payload for `/name [subcommand] options…` (type 2, or 4 for autocomplete).
    `app_permissions`: what the bot may do in the channel (e.g. BOT_THREAD_PERMS)."""
    payload = _base(
        4 if autocomplete else 2,
        user_id=user_id, guild_id=guild_id, channel_id=channel_id, admin=admin, roles=roles, thread_parent=thread_parent,
        app_permissions=app_permissions,
    )
    opts = options or []
    if subcommand is not None:
        opts = [{"type": 1, "name": subcommand, "options": opts}]
    data: dict[str, Any] = {"id": str(next_snowflake()), "name": name, "type": 1, "options": opts}
    resolved: dict[str, Any] = {}
    if attachments:
        resolved["attachments"] = attachments
    if users:
        resolved["users"] = users
    if resolved:
        data["resolved"] = resolved
    payload["data"] = data
    return payload


def attachment(
    api: FakeDiscordAPI, filename: str, data: bytes, *, size: int | None = None, content_type: str = "text/plain",
    fail_download: bool = False, stream_bytes: int | None = None,
) -> dict:
    """A resolved attachment served by the fake for download; `size` may lie (as a test of pre-checks).
    With `stream_bytes`, the download is that many bytes sent chunked instead of `data`."""
    attachment_id = next_snowflake()
    url = api.add_file(f"{attachment_id}/{filename}", data)
    if stream_bytes is not None:
        url = api.stream_file(f"{attachment_id}/{filename}", stream_bytes)
    if fail_download:
        api.failing_files.add(f"{attachment_id}/{filename}")
    return {
        "id": str(attachment_id),
        "filename": filename,
        "size": len(data) if size is None else size,
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
    }


def mention_message(
    text: str,
    *,
    author_id: int = 700_000_000_000_000_001,
    guild_id: int | None = 800_000_000_000_000_001,
    channel_id: int = 810_000_000_000_000_001,
    mention: bool = True,
) -> dict:
    """A MESSAGE_CREATE payload: `text` with the bot @mentioned in front (or, `mention=False`, plain)."""
    message_id = next_snowflake()
    payload: dict[str, Any] = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "author": _user(author_id, f"user{author_id % 1000}"),
        "content": f"<@{BOT_USER_ID}> {text}" if mention else text,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [_user(BOT_USER_ID, "docent", bot=True)] if mention else [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["member"] = {k: v for k, v in _member(author_id, permissions=MEMBER_PERMS).items() if k != "user"}
    return payload


def channel_message(
    content: str = "",
    *,
    author_id: int = 700_000_000_000_000_001,
    author_name: str | None = None,
    bot: bool = False,
    channel_id: int = 810_000_000_000_000_001,
    embeds: list[dict] | None = None,
    asked_by: int | None = None,
) -> dict:
    """A message object as the REST API returns it; `asked_by` makes it an interaction's reply."""
    message: dict[str, Any] = {
        "id": str(next_snowflake()),
        "channel_id": str(channel_id),
        "author": _user(author_id, author_name or f"user{author_id % 1000}", bot=bot),
        "content": content,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": embeds or [],
        "components": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    if asked_by is not None:
        message["interaction_metadata"] = {"id": str(next_snowflake()), "type": 2,
                                           "user": _user(asked_by, f"user{asked_by % 1000}"),
                                           "authorizing_integration_owners": {}}
    return message


def message_command(
    name: str,
    message: dict,
    *,
    user_id: int = 700_000_000_000_000_001,
    guild_id: int | None = 800_000_000_000_000_001,
    channel_id: int = 810_000_000_000_000_001,
    app_permissions: str = "0",
) -> dict:
    """An INTERACTION_CREATE payload for a message context-menu command on `message` (type 2, data type 3)."""
    payload = _base(2, user_id=user_id, guild_id=guild_id, channel_id=channel_id, admin=False, roles=(),
                    thread_parent=None, app_permissions=app_permissions)
    payload["data"] = {"id": str(next_snowflake()), "name": name, "type": 3, "target_id": message["id"],
                       "resolved": {"messages": {message["id"]: message}}}
    return payload


def modal_submit(
    custom_id: str,
    values: dict[str, str],
    *,
    user_id: int = 700_000_000_000_000_001,
    guild_id: int | None = 800_000_000_000_000_001,
    channel_id: int = 810_000_000_000_000_001,
) -> dict:
    """An INTERACTION_CREATE payload submitting the modal `custom_id` (type 5): text input id → value,
    each inside a label (component type 18) as Discord sends them."""
    payload = _base(5, user_id=user_id, guild_id=guild_id, channel_id=channel_id, admin=False, roles=(),
                    thread_parent=None)
    payload["data"] = {"custom_id": custom_id, "components": [
        {"type": 18, "id": i + 1, "component": {"type": 4, "id": i + 100, "custom_id": input_id, "value": value}}
        for i, (input_id, value) in enumerate(values.items())
    ]}
    return payload


def button_click(
    custom_id: str,
    *,
    user_id: int = 700_000_000_000_000_001,
    guild_id: int | None = 800_000_000_000_000_001,
    channel_id: int = 810_000_000_000_000_001,
    message: dict | None = None,
) -> dict:
    """An INTERACTION_CREATE payload for a click on a button with `custom_id` (type 3), on `message`
    (e.g. one docent sent, from `FakeDiscordAPI.messages`) or on a stand-in message."""
    payload = _base(3, user_id=user_id, guild_id=guild_id, channel_id=channel_id, admin=False, roles=(), thread_parent=None)
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    if message is not None:
        payload["message"] = message
        return payload
    message_id = next_snowflake()
    payload["message"] = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "author": _user(BOT_USER_ID, "docent", bot=True),
        "content": "",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [
            {"type": 1, "components": [{"type": 2, "style": 2, "custom_id": custom_id, "label": "x"}]}
        ],
        "pinned": False,
        "type": 20,
        "flags": 0,
    }
    return payload


# --- driving the real client -----------------------------------------------------------


class DiscordHarness:
    """docent's real discord.py client logged in to a `FakeDiscordAPI`, fed interactions directly.

    Interactions go through `client._connection.parse_interaction_create`, the same handler the
    gateway's INTERACTION_CREATE dispatch calls, so the real `app_commands` tree (option parsing,
    checks, autocomplete, dynamic buttons) runs.
    """

    TOKEN = "test-bot-token"

    def __init__(self, client, api: FakeDiscordAPI, saved: dict) -> None:
        self.client = client
        self.api = api
        self._saved = saved
        self.dispatched_at: dict[str, float] = {}  # interaction token → perf_counter at dispatch

    @classmethod
    async def start(cls, docent, settings) -> "DiscordHarness":
        import discord
        from discord.gateway import DiscordWebSocket
        from pydantic import SecretStr

        from connectors.discord.bot import build_client

        # build_client moves Route.BASE and the login's setup hook moves the gateway: both are
        # process-wide class attributes, restored by close().
        saved = {"base": discord.http.Route.BASE, "gateway": DiscordWebSocket.DEFAULT_GATEWAY}
        api = await FakeDiscordAPI().start()
        settings = settings.model_copy(update={"discord_api_url": api.api_base, "discord_token": SecretStr(cls.TOKEN)})
        client = build_client(docent, settings)
        await client.login(cls.TOKEN)
        return cls(client, api, saved)

    async def close(self) -> None:
        import discord
        from discord.gateway import DiscordWebSocket

        try:
            await self.client.close()
        finally:
            await self.api.stop()
            discord.http.Route.BASE = self._saved["base"]
            DiscordWebSocket.DEFAULT_GATEWAY = self._saved["gateway"]

    def dispatch(self, payload: dict) -> str:
        """Feed one INTERACTION_CREATE; returns its token (the key to its recorded calls)."""
        self.dispatched_at[payload["token"]] = time.perf_counter()
        self.api.interactions[payload["token"]] = payload
        self.client._connection.parse_interaction_create(payload)
        return payload["token"]

    def deliver_guild_create(self, guild_id: int, channel_ids: tuple[int, ...] = ()) -> None:
        """Feed GUILD_CREATE for a small guild with these text channels, as the gateway does at
        start-up: the guild (and later its threads) are then in the client's cache."""
        self.client._connection.parse_guild_create({
            "id": str(guild_id), "name": "a server", "unavailable": False, "member_count": 2, "large": False,
            "owner_id": str(OWNER_ID), "features": [], "roles": [], "emojis": [], "stickers": [], "members": [],
            "voice_states": [], "presences": [], "threads": [], "stage_instances": [], "guild_scheduled_events": [],
            "channels": [_channel(c, guild_id) for c in channel_ids], "premium_tier": 0,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "system_channel_flags": 0, "preferred_locale": "en-US",
        })

    def deliver_thread_create(self, thread: dict) -> None:
        """Feed THREAD_CREATE for a thread (e.g. one docent started: `api.threads[id]`), as Discord
        sends it to the thread's creator."""
        self.client._connection.parse_thread_create({**thread, "newly_created": True})

    def deliver_message(self, payload: dict) -> str:
        """Feed one MESSAGE_CREATE as the gateway would (and keep it in its channel's history);
        returns the message id."""
        self.api.add_channel_message(payload["channel_id"], payload)
        self.client._connection.parse_message_create(payload)
        return payload["id"]

    async def wait_for_replies(self, token: str, count: int = 1, timeout: float = 30.0) -> list[RecordedCall]:
        await self.api.wait_for(lambda: len(self.api.replies_for(token)) >= count, timeout)
        return self.api.replies_for(token)

    async def wait_for_callback(self, token: str, timeout: float = 30.0) -> RecordedCall:
        await self.api.wait_for(lambda: self.api.callback_for(token) is not None, timeout)
        return self.api.callback_for(token)  # type: ignore[return-value]

    async def wait_for_final(self, token: str, timeout: float = 30.0) -> RecordedCall:
        """The reply that carries the final answer: an edit or follow-up whose embeds have no 'writing…' footer."""

        def final() -> RecordedCall | None:
            for call in reversed(self.api.replies_for(token)):
                body = call.json or {}
                embeds = body.get("embeds") or []
                if (embeds and (embeds[-1].get("footer") or {}).get("text") != "writing…") or body.get("content"):
                    return call
            return None

        await self.api.wait_for(lambda: final() is not None, timeout)
        return final()  # type: ignore[return-value]


class ThreadedFakeDiscord:
    """`with ThreadedFakeDiscord() as discord:` — a `FakeDiscordAPI` on its own event loop in a
    thread; `discord.api` is the fake, `discord.call(coro)` runs a coroutine on its loop."""

    def __init__(self) -> None:
        self.api = FakeDiscordAPI()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-discord", daemon=True)

    def call(self, coro, timeout_s: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def __enter__(self) -> "ThreadedFakeDiscord":
        self._thread.start()
        self.call(self.api.start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call(self.api.stop(), timeout_s=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def dispatch(self, event: str, data: dict) -> None:
        self.call(self.api.dispatch(event, data))

    def wait_for(self, predicate, timeout_s: float = 20.0) -> None:
        self.call(self.api.wait_for(predicate, timeout_s), timeout_s + 5)
