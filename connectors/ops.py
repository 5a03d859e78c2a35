"""The ops endpoint every `docent run` serves: `/healthz`, `/readyz` and `/metrics`.

    GET /healthz   200 while the process's event loop answers (liveness)
    GET /readyz    200 when every check passes — the store, the database, Redis when configured
                   and each platform's connection — else 503 naming what failed (and while
                   starting or shutting down), as JSON: {"ready": …, "checks": {name: "ok" | why}}
    GET /metrics   prometheus-client's text exposition of bot/metrics.py's series (and the
                   process collector's CPU and memory)

It listens on DOCENT_OPS_HOST:DOCENT_OPS_PORT (127.0.0.1:9464 by default: metrics name models,
workspaces' traffic and costs, so they stay on the host unless an operator says otherwise).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0  # a check that takes longer counts as failed (a hung Redis must not hang /readyz)


class OpsPortInUse(RuntimeError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"the ops endpoint can't listen on {host}:{port} (in use); set DOCENT_OPS_PORT to a free port"
        )


class OpsEndpoint:
    """`await ops.start()` … `await ops.stop()`; checks are added as parts come up."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.host = host
        self.port = port
        self._checks: dict[str, Callable[[], None]] = {}  # blocking; raise when not ready
        self._platforms: dict[str, Callable[[], bool]] = {}  # cheap; True while connected
        self._state = "starting"
        self._runner: web.AppRunner | None = None

    # --- what is checked ---------------------------------------------------------------------
    def add_checks(self, checks: dict[str, Callable[[], None]]) -> None:
        self._checks.update(checks)

    def add_platform(self, name: str, is_connected: Callable[[], bool]) -> None:
        self._platforms[name] = is_connected

    def serving(self) -> None:
        self._state = "serving"

    def shutting_down(self) -> None:
        self._state = "shutting down"

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            if err.errno == errno.EADDRINUSE:
                raise OpsPortInUse(self.host, self.port) from None
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("ops endpoint on http://%s:%d (/healthz /readyz /metrics)", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- handlers -----------------------------------------------------------------------------
    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        results = await self.check()
        ready = all(v == "ok" for v in results.values())
        return web.json_response({"ready": ready, "checks": results}, status=200 if ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def check(self) -> dict[str, str]:
        """Every check's result: "ok" or a short reason."""
        results: dict[str, str] = {}
        if self._state != "serving":
            results["process"] = self._state
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        results.update(zip(names, outcomes))
        for name, is_connected in self._platforms.items():
            try:
                results[name] = "ok" if is_connected() else "not connected"
            except Exception as err:  # a probe must never break the endpoint
                results[name] = f"{type(err).__name__}: {err}"
        return results

    @staticmethod
    async def _run_check(check: Callable[[], None]) -> str:
        try:
            await asyncio.wait_for(asyncio.to_thread(check), CHECK_TIMEOUT_S)
            return "ok"
        except asyncio.TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:.0f} s"
        except Exception as err:
            # The type and first line say what broke; never a traceback (or a URL with a password).
            return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}".rstrip(": ")
