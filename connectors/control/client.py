"""The CLI's side of the control socket: `RemoteDocent`, what the commands need of `Docent`
(`ask` with streaming, `admin.upload`, `admin.remove`), carried out by the running holder.

Whatever goes wrong with the holder becomes one `HolderUnavailable` whose message is a single
line naming the holder's pid and what to do; user errors (NotFound, DocumentError, …) are
raised as themselves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from connectors.control import wire
from connectors.control.holder import DataDirLock, HolderInfo, unix_address

HELLO_TIMEOUT_S = 3.0  # a holder that can't say hello in this long is hung
STARTING_WAIT_S = 90.0  # a `docent run` loads its model before it serves the socket
POLL_S = 0.2


class HolderUnavailable(Exception):
    """The data dir is held by a process this command can't work through; one line for the user."""


def _who(info: HolderInfo | None) -> str:
    return f"process {info.pid} ({info.command})" if info else "another process"


class ControlClient:
    def __init__(self, lock: DataDirLock, info: HolderInfo | None) -> None:
        self.lock = lock
        self.info = info
        self._stack = ExitStack()
        address = self._stack.enter_context(unix_address(lock.socket_path))
        self._http = self._stack.enter_context(httpx.Client(
            transport=httpx.HTTPTransport(uds=address),
            base_url="http://docent",
            # Operations (an ingest, an answer) take as long as they take; connecting must not.
            timeout=httpx.Timeout(None, connect=HELLO_TIMEOUT_S),
        ))

    def close(self) -> None:
        self._stack.close()

    # --- requests --------------------------------------------------------------------------------
    def hello(self) -> dict:
        try:
            response = self._http.get("/v1/hello", timeout=HELLO_TIMEOUT_S)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError):
            raise HolderUnavailable(
                f"{_who(self.info)} holds {self.lock.data_dir} but isn't answering; "
                f"wait for it, or stop it{self._kill_hint()} and try again."
            ) from None

    def call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError:
            raise self._lost() from None
        return self._result(response.status_code, response.content)

    def stream(self, path: str, *, json_body: dict, on_line: Callable[[dict], None]) -> None:
        try:
            with self._http.stream("POST", path, json=json_body) as response:
                if response.status_code != 200:
                    self._result(response.status_code, response.read())
                for line in response.iter_lines():
                    if line:
                        on_line(json.loads(line))
        except httpx.HTTPError:
            raise self._lost() from None

    def _result(self, status: int, content: bytes) -> dict:
        try:
            body = json.loads(content or b"{}")
        except ValueError:
            body = {}
        if status == 200:
            return body
        error = body.get("error") or {}
        rebuilt = wire.rebuild_error(error) if status == 400 else None
        if rebuilt is not None:
            raise rebuilt
        raise HolderUnavailable(f"{_who(self.info)} failed to carry out this command ({error.get('message') or status}).")

    def _lost(self) -> HolderUnavailable:
        return HolderUnavailable(
            f"{_who(self.info)} stopped answering during this command; check with `docent docs list` and run it again."
        )

    def _kill_hint(self) -> str:
        return f" (kill {self.info.pid})" if self.info else ""


class RemoteAdmin:
    """The admin operations the CLI forwards (the store-changing ones)."""

    def __init__(self, client: ControlClient) -> None:
        self._client = client

    def upload(self, actor, name: str, data: bytes, scope, *, url: str | None = None):
        params = {"name": name, "workspace": scope.workspace, "channel": scope.storage_channel, "user": actor.user_id}
        if url:
            params["url"] = url
        body = self._client.call("POST", "/v1/documents", params=params, content=data)
        return wire.load(wire.UPLOAD_REPORT, body["report"])

    def upload_many(self, actor, items, scope, *, on_done=None, **_batching) -> list:
        """`AdminOperations.upload_many` over the socket: one forwarded upload per file (the
        holder embeds each on its own); a file's user error is its outcome, the rest go on."""
        from admin.operations import UploadOutcome
        from knowledge.types import DocumentError

        outcomes = []
        for item in items:
            try:
                outcome = UploadOutcome(item.name, self.upload(actor, item.name, item.read(), scope, url=item.url))
            except (DocumentError, OSError) as e:
                outcome = UploadOutcome(item.name, error=e)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return outcomes

    def remove(self, actor, scope, name: str):
        body = self._client.call("POST", "/v1/documents/remove", json={
            "workspace": scope.workspace, "channel": scope.storage_channel, "name": name, "user": actor.user_id,
        })
        return wire.load(wire.DOCUMENT_RECORD, body["record"])


class RemoteDocent:
    """Stands in for `Docent` in CLI commands while another process holds the data dir."""

    def __init__(self, client: ControlClient) -> None:
        self.client = client
        self.admin = RemoteAdmin(client)

    def ask(self, q, *, on_delta: Callable[[str], None] | None = None):
        result: dict[str, Any] = {}

        def on_line(line: dict) -> None:
            if "delta" in line and on_delta is not None:
                on_delta(line["delta"])
            elif "answer" in line:
                result["answer"] = wire.load(wire.ANSWER, line["answer"])
            elif "error" in line:
                result["error"] = line["error"]

        self.client.stream("/v1/ask", json_body={"question": wire.dump(wire.QUESTION, q)}, on_line=on_line)
        if "answer" not in result:
            raise HolderUnavailable(f"{_who(self.client.info)} failed to answer (see its log).")
        return result["answer"]


@contextmanager
def open_or_forward(
    lock: DataDirLock,
    command: str,
    open_local: Callable[[], Any],
    *,
    starting_wait_s: float = STARTING_WAIT_S,
    on_wait: Callable[[HolderInfo], None] | None = None,
) -> Iterator[Any]:
    """The store for one CLI command: opened here (`open_local()`, a context manager) when nobody
    holds the data dir, else a `RemoteDocent` on the `docent run` holding it — waiting while that
    one is still starting. Raises HolderUnavailable (one line) when neither can be had."""
    deadline = time.monotonic() + starting_wait_s
    waited = False
    while True:
        if lock.acquire(command):
            try:
                with open_local() as docent:
                    yield docent
            finally:
                lock.release()
            return
        info = lock.holder()
        if info is not None and info.serving:
            break
        if info is not None and info.command != "docent run":
            raise HolderUnavailable(f"{lock.data_dir} is in use by {_who(info)}; wait for it to finish, then try again.")
        if time.monotonic() >= deadline:
            raise HolderUnavailable(
                f"{_who(info)} holds {lock.data_dir} but hasn't opened its control socket; wait for it, "
                f"or stop it{f' (kill {info.pid})' if info else ''} and try again."
            )
        if info is not None and not waited and on_wait is not None:
            on_wait(info)
            waited = True
        time.sleep(POLL_S)
    client = ControlClient(lock, info)
    try:
        client.hello()
        yield RemoteDocent(client)
    finally:
        client.close()
