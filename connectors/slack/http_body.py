"""Reading an HTTP request body with a byte limit, before anything parses or verifies it.

Bolt's WSGI adapter reads `Content-Length` bytes whole, decodes them and only then checks the
signature: an unsigned 400 MB POST costs 750 MB of memory. Slack's requests are a few KB, so
`read_body` refuses a declared length over the limit without reading a byte, and reads a body
of unknown length (chunked) only up to the limit. A short read or a slow client ends the read
too: each read waits at most the server's socket timeout, all of them `deadline_s` together.
"""

from __future__ import annotations

import io
import time

_READ_BLOCK = 64 * 1024
# After refusing a streamed body, read on (and discard) this much so the client gets to read
# the 413 instead of a connection reset; past it, close anyway.
_DRAIN_MAX_BYTES = 4 * 1024 * 1024


class BodyRefused(Exception):
    """The body can't be accepted; `status` is the HTTP status line to answer with."""

    def __init__(self, status: str, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def read_body(environ: dict, *, max_bytes: int, deadline_s: float = 10.0) -> bytes:
    """The request body, at most `max_bytes`; raises `BodyRefused` (413, 400, 408) otherwise."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    deadline = time.monotonic() + deadline_s
    declared = (environ.get("CONTENT_LENGTH") or "").strip()
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared and not chunked:
        try:
            length = int(declared)
        except ValueError:
            raise BodyRefused("400 Bad Request", "invalid Content-Length") from None
        if length < 0:
            raise BodyRefused("400 Bad Request", "invalid Content-Length")
        if length > max_bytes:
            raise BodyRefused("413 Payload Too Large", f"request bodies are limited to {max_bytes} bytes")
        return _read_exactly(stream, length, deadline)
    if not chunked:
        return b""  # no length and no chunks: no body (what WSGI servers assume too)
    if environ.get("wsgi.input_terminated"):
        # The server decoded the chunks and ends the stream at the body's end (gunicorn does).
        return _read_to_end(stream, max_bytes, deadline)
    return _read_chunked(stream, max_bytes, deadline)  # wsgiref passes the raw chunked framing


def _read_exactly(stream: io.BufferedIOBase, length: int, deadline: float) -> bytes:
    parts: list[bytes] = []
    left = length
    while left > 0:
        part = _read(stream, min(left, _READ_BLOCK), deadline)
        if not part:
            raise BodyRefused("400 Bad Request", "the body is shorter than its Content-Length")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_to_end(stream: io.BufferedIOBase, max_bytes: int, deadline: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    while part := _read(stream, _READ_BLOCK, deadline):
        size += len(part)
        if size > max_bytes:
            try:
                _skip(stream, _DRAIN_MAX_BYTES, deadline)
            except BodyRefused:  # a slow drain: close without it
                pass
            raise BodyRefused("413 Payload Too Large", f"request bodies are limited to {max_bytes} bytes")
        parts.append(part)
    return b"".join(parts)


def _read_chunked(stream: io.BufferedIOBase, max_bytes: int, deadline: float) -> bytes:
    """Decode `Transfer-Encoding: chunked` (RFC 9112 §7.1), never holding more than `max_bytes`."""
    parts: list[bytes] = []
    size = 0
    too_large = False
    while True:
        line = _readline(stream, deadline)
        try:
            chunk = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyRefused("400 Bad Request", "malformed chunked body") from None
        if chunk == 0:
            while _readline(stream, deadline) not in (b"\r\n", b"\n", b""):  # trailer fields
                pass
            break
        size += chunk
        if size > max_bytes:
            too_large = True
        if not too_large:
            parts.append(_read_exactly(stream, chunk, deadline))
        elif size <= max_bytes + _DRAIN_MAX_BYTES:
            _skip(stream, chunk, deadline)
        else:
            break  # done draining: the client gets the 413 or a reset, either way we stop here
        if _readline(stream, deadline).strip():
            raise BodyRefused("400 Bad Request", "malformed chunked body")
    if too_large:
        raise BodyRefused("413 Payload Too Large", f"request bodies are limited to {max_bytes} bytes")
    return b"".join(parts)


def _skip(stream: io.BufferedIOBase, length: int, deadline: float) -> None:
    while length > 0:
        part = _read(stream, min(length, _READ_BLOCK), deadline)
        if not part:
            return
        length -= len(part)


def _read(stream: io.BufferedIOBase, n: int, deadline: float) -> bytes:
    if time.monotonic() > deadline:
        raise BodyRefused("408 Request Timeout", "the body took too long to arrive")
    try:
        return stream.read(n)
    except TimeoutError:  # the server's socket timeout: a client that stopped sending
        raise BodyRefused("408 Request Timeout", "the body took too long to arrive") from None


def _readline(stream: io.BufferedIOBase, deadline: float) -> bytes:
    if time.monotonic() > deadline:
        raise BodyRefused("408 Request Timeout", "the body took too long to arrive")
    try:
        line = stream.readline(1024)  # a chunk-size line is short; a longer one is an attack
    except TimeoutError:
        raise BodyRefused("408 Request Timeout", "the body took too long to arrive") from None
    if line and not line.endswith(b"\n"):
        raise BodyRefused("400 Bad Request", "malformed chunked body")
    return line

