"""A loopback fake of the Anthropic Messages API (`POST /v1/messages`), JSON and SSE streaming.

Tests queue behaviours (`reply`, `tool_call`, `error`, `delay`, `rate_limited`, `spend_limit`,
`overloaded`) consumed one per request; with the queue empty it replies `default_text`. Every request is
recorded (headers, JSON body) so tests can assert what the real SDK sent.

Use the `fake_anthropic` fixture (import it into a conftest or test module), then point settings
at it: `anthropic_api_key="test-key"`, `anthropic_base_url=fake_anthropic.url`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest


@dataclass(frozen=True)
class ToolUse:
    """A `tool_use` content block after the reply's text (stop_reason "tool_use"). Streamed as
    the API does: `content_block_start` with empty input, then `input_json_delta` pieces."""

    name: str
    input: dict
    id: str = "toolu_01FakeToolCall"
    json_pieces: int = 3  # how many input_json_delta events carry the arguments


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int = 120
    output_tokens: int = 30
    # Streaming: the text is sent in these pieces (default: word by word).
    pieces: tuple[str, ...] | None = None
    tool_use: ToolUse | None = None


@dataclass(frozen=True)
class ErrorReply:
    status: int
    error_type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Delay:
    """Sleep before answering with `then` — longer than the client timeout to simulate a hang."""

    seconds: float
    then: Reply | ErrorReply | None = None


@dataclass(frozen=True)
class StreamError:
    """Streaming only: start a normal SSE reply, send `partial_text`, then an `error` event
    (HTTP status stays 200), as the API does when it overloads mid-stream."""

    partial_text: str
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


Behaviour = Reply | ErrorReply | Delay | StreamError


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict

    @property
    def system(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):
            return "".join(block.get("text", "") for block in system)
        return system

    def message_texts(self) -> list[tuple[str, str]]:
        out = []
        for m in self.body.get("messages", []):
            content = m["content"]
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            out.append((m["role"], content))
        return out


@dataclass
class FakeAnthropic:
    url: str = ""
    default_text: str = "The documents say so [1]."
    requests: list[RecordedRequest] = field(default_factory=list)
    _queue: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    # --- scripting -----------------------------------------------------------------------------
    def push(self, *behaviours: Behaviour) -> "FakeAnthropic":
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def reply(self, text: str, **kw) -> "FakeAnthropic":
        return self.push(Reply(text, **kw))

    def tool_call(self, name: str, arguments: dict, *, text: str = "", **kw) -> "FakeAnthropic":
        """Reply with `text` (may be empty), then a call of tool `name` with `arguments`."""
        return self.push(Reply(text, tool_use=ToolUse(name, arguments), **kw))

    def error(self, status: int, error_type: str, message: str = "error", headers: dict | None = None) -> "FakeAnthropic":
        return self.push(ErrorReply(status, error_type, message, tuple((headers or {}).items())))

    def rate_limited(self, retry_after: str | None = "2") -> "FakeAnthropic":
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return self.error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", headers)

    def spend_limit(self) -> "FakeAnthropic":
        # As the API reports a workspace/organisation spend cap: a 429, but never worth retrying.
        return self.error(
            429,
            "rate_limit_error",
            "enforced_spend_limit_reached: You have reached your specified API usage limits.",
            {"retry-after": "1"},
        )

    def overloaded(self) -> "FakeAnthropic":
        return self.error(529, "overloaded_error", "Overloaded")

    def stream_error(self, partial_text: str, error_type: str = "overloaded_error") -> "FakeAnthropic":
        return self.push(StreamError(partial_text, error_type))

    def delay(self, seconds: float, then: Behaviour | None = None) -> "FakeAnthropic":
        return self.push(Delay(seconds, then))

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else Reply(self.default_text)


def _handler_for(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            fake.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path.split("?")[0] != "/v1/messages":
                self._send_error(ErrorReply(404, "not_found_error", f"no route {self.path}"))
                return
            behaviour = fake._next()
            if isinstance(behaviour, Delay):
                if fake._stopping.wait(behaviour.seconds):
                    return
                behaviour = behaviour.then or Reply(fake.default_text)
            if isinstance(behaviour, ErrorReply):
                self._send_error(behaviour)
            elif isinstance(behaviour, StreamError):
                self._send_stream(Reply(behaviour.partial_text), body, failure=behaviour)
            elif body.get("stream"):
                self._send_stream(behaviour, body)
            else:
                self._send_json(behaviour, body)

        def _send_bytes(self, status: int, payload: bytes, content_type: str, headers=()) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to do

        def _send_error(self, err: ErrorReply) -> None:
            payload = {"type": "error", "error": {"type": err.error_type, "message": err.message}}
            self._send_bytes(err.status, json.dumps(payload).encode(), "application/json", err.headers)

        def _message(self, reply: Reply, body: dict) -> dict:
            content: list[dict] = [{"type": "text", "text": reply.text}] if reply.text or not reply.tool_use else []
            if reply.tool_use is not None:
                tool = reply.tool_use
                content.append({"type": "tool_use", "id": tool.id, "name": tool.name, "input": tool.input})
            return {
                "id": f"msg_{uuid.uuid4().hex[:16]}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "claude-haiku-4-5"),
                "content": content,
                "stop_reason": "tool_use" if reply.tool_use is not None else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
            }

        def _send_json(self, reply: Reply, body: dict) -> None:
            self._send_bytes(200, json.dumps(self._message(reply, body)).encode(), "application/json")

        def _send_stream(self, reply: Reply, body: dict, failure: StreamError | None = None) -> None:
            start = self._message(reply, body)
            start["content"] = []
            start["stop_reason"] = None
            start["usage"] = {"input_tokens": reply.input_tokens, "output_tokens": 1}
            pieces = reply.pieces or tuple(_word_pieces(reply.text))
            events = [("message_start", {"type": "message_start", "message": start})]
            index = 0
            if reply.text or reply.tool_use is None:
                events += [
                    ("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}}),
                    *(
                        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": piece}})
                        for piece in pieces
                    ),
                ]
                if failure is None:
                    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
                index = 1
            if reply.tool_use is not None and failure is None:
                tool = reply.tool_use
                events.append(("content_block_start", {
                    "type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}},
                }))
                arguments = json.dumps(tool.input)
                step = max(1, -(-len(arguments) // tool.json_pieces))
                events += [
                    ("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": {"type": "input_json_delta", "partial_json": arguments[i:i + step]}})
                    for i in range(0, len(arguments), step)
                ]
                events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            if failure is not None:
                events.append(("error", {"type": "error", "error": {"type": failure.error_type,
                                                                    "message": failure.message}}))
            else:
                stop_reason = "tool_use" if reply.tool_use is not None else "end_turn"
                events += [
                    # LangChain reads input tokens from here when streaming: send both counts.
                    ("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                       "usage": {"input_tokens": reply.input_tokens,
                                                 "output_tokens": reply.output_tokens}}),
                    ("message_stop", {"type": "message_stop"}),
                ]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for name, data in events:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def _word_pieces(text: str) -> Iterator[str]:
    word = ""
    for ch in text:
        word += ch
        if ch == " ":
            yield word
            word = ""
    if word:
        yield word


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping through a simulated hang must not block shutdown


def start_fake_anthropic() -> tuple[FakeAnthropic, _Server, threading.Thread]:
    fake = FakeAnthropic()
    server = _Server(("127.0.0.1", 0), _handler_for(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True)
    thread.start()
    return fake, server, thread


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake, server, thread = start_fake_anthropic()
    try:
        yield fake
    finally:
        fake._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
