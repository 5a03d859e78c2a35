"""`docent run`: one process serving its platforms — Slack, Discord or both — around one `Docent`.

    platforms start ─► ops endpoint + control socket serve ─► … SIGTERM / Ctrl-C ─►
    /readyz 503 ─► intake stops (Socket Mode unhooked, HTTP server closed, control socket closed)
    ─► in-flight answers drain on every platform (up to SHUTDOWN_DRAIN_S) ─► close

Everything runs in one asyncio loop on the main thread: discord.py's client, the Slack Socket
Mode client, the ops endpoint and the control socket; Slack's Bolt listeners and every answer
run in worker threads, as before. A platform is any object with the `Platform` methods below.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from connectors.ops import OpsEndpoint

if TYPE_CHECKING:
    from bot.core import Docent
    from bot.settings import Settings
    from connectors.control.server import ControlServer

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 25.0  # container runtimes send SIGKILL 30 s after SIGTERM


class Platform(Protocol):
    name: str

    async def start(self, on_fatal: Callable[[BaseException], None]) -> None: ...

    def is_connected(self) -> bool: ...

    async def stop_intake(self) -> None: ...

    async def drain(self, timeout_s: float) -> bool: ...

    async def close(self) -> None: ...


class NoPlatformConfigured(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "no platform to run: set SLACK_BOT_TOKEN with SLACK_APP_TOKEN (or SLACK_SIGNING_SECRET and --http) "
            "for Slack, and/or DISCORD_TOKEN for Discord"
        )


class PlatformStartFailed(RuntimeError):
    """A platform could not connect at start (a bad token, an unreachable API): nothing is served."""

    def __init__(self, name: str, err: BaseException) -> None:
        first_line = (str(err).splitlines() or [""])[0][:300]
        super().__init__(f"{name} could not start: {type(err).__name__}{': ' + first_line if first_line else ''}")


def _set(secret) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def configured_names(settings: "Settings", *, http: bool = False) -> list[str]:
    """The platforms whose credentials are set (raises NoPlatformConfigured when none is)."""
    names = []
    if http:
        # Over HTTP several workspaces may each bring their own token (Bolt's OAuth flow).
        tokens = _set(settings.slack_bot_token) or (bool(settings.slack_client_id) and _set(settings.slack_client_secret))
        if tokens and _set(settings.slack_signing_secret):
            names.append("slack")
    elif _set(settings.slack_bot_token) and _set(settings.slack_app_token):
        names.append("slack")
    if _set(settings.discord_token):
        names.append("discord")
    if not names:
        raise NoPlatformConfigured()
    return names


def configured_platforms(docent: "Docent", settings: "Settings", *, http: bool = False, port: int = 3000) -> list[Platform]:
    """Every platform whose credentials are set: Slack (Socket Mode, or HTTP with `http`) and Discord."""
    platforms: list[Platform] = []
    for name in configured_names(settings, http=http):
        if name == "slack":
            from connectors.slack.app import SlackHttpPlatform, SlackSocketModePlatform

            platforms.append(SlackHttpPlatform(docent, settings, port) if http else SlackSocketModePlatform(docent, settings))
        else:
            from connectors.discord.bot import DiscordPlatform

            platforms.append(DiscordPlatform(docent, settings))
    return platforms


async def serve(
    docent: "Docent",
    settings: "Settings",
    platforms: list[Platform],
    *,
    control: "ControlServer | None" = None,
    stop: asyncio.Event | None = None,
    on_serving: Callable[[OpsEndpoint], None] | None = None,
) -> None:
    """Serve until `stop` is set (SIGTERM / SIGINT set it), then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    fatal: list[BaseException] = []

    def on_fatal(err: BaseException) -> None:
        fatal.append(err)
        stop.set()

    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (RuntimeError, ValueError):  # not the main thread (tests run serve() in one)
            pass

    ops = OpsEndpoint(settings.ops_host, settings.ops_port)
    ops.add_checks(docent.readiness_checks())
    await ops.start()  # first, so /healthz answers while the platforms connect
    started: list[Platform] = []
    try:
        for platform in platforms:
            try:
                await platform.start(on_fatal)
            except Exception as err:
                log.debug("starting %s failed", platform.name, exc_info=True)
                started.append(platform)  # closed below with the others
                raise PlatformStartFailed(platform.name, err) from err
            started.append(platform)
            ops.add_platform(platform.name, platform.is_connected)
        if control is not None:
            await control.start()
        ops.serving()
        log.info("docent serving %s", ", ".join(p.name for p in platforms))
        if on_serving is not None:
            on_serving(ops)
        await stop.wait()
    finally:
        ops.shutting_down()
        log.info("docent shutting down: draining in-flight answers (up to %.0f s)", SHUTDOWN_DRAIN_S)
        await _shutdown(started, control)
        await ops.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)
    if fatal:
        raise fatal[0]


async def _shutdown(platforms: list[Platform], control: "ControlServer | None") -> None:
    for platform in platforms:
        try:
            await platform.stop_intake()
        except Exception:
            log.exception("stopping %s intake failed", platform.name)
    drains = [platform.drain(SHUTDOWN_DRAIN_S) for platform in platforms]
    if control is not None:
        drains.append(control.stop())  # waits for forwarded commands in flight
    results = await asyncio.gather(*drains, return_exceptions=True)
    for platform, result in zip(platforms, results):
        if result is not True:
            log.warning("%s answers still in flight after %.0f s: %s", platform.name, SHUTDOWN_DRAIN_S, result)
    for platform in platforms:
        try:
            await platform.close()
        except Exception:
            log.exception("closing %s failed", platform.name)


def run_platforms(docent: "Docent", settings: "Settings", platforms: list[Platform], *, control=None) -> None:
    """Block serving `platforms` (with the ops endpoint) until SIGTERM / Ctrl-C."""
    asyncio.run(serve(docent, settings, platforms, control=control))
