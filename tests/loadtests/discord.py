"""`python -m tests.loadtests discord`: does docent acknowledge Discord within its 3-second deadline under load?

Discord drops an interaction that isn't acknowledged within 3 s. docent defers before it starts
answering, so the acknowledgement must not depend on how long the model takes. This measures it:
N `/ask` interactions are dispatched at once through the real discord.py client and command tree
into a loopback fake of Discord's REST API, while the chat model takes `model_delay_s` to answer.
The figure is the time from dispatching an interaction to its defer callback arriving at the
fake. The model is released as soon as every deferral has arrived, so the run takes seconds, not
N × 30 s.

Runs from a source checkout: the fake Discord API lives in `tests/fakes/discord_api.py`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from admin.types import Actor
from bot.settings import Settings
from knowledge.types import Scope
from tests.fakes.chat_model import FakeChatModel

BENCH_GUILD = 800_000_000_000_000_777
BENCH_CHANNEL = 810_000_000_000_000_777
BENCH_DOCUMENT = """# Leave policy

Employees receive 25 days of paid annual leave per calendar year. Unused leave of up to five days
may be carried over into the first quarter of the next year. Leave requests go to your manager at
least two weeks in advance.

# Expenses

Travel expenses are reimbursed within 30 days when submitted with receipts through the finance
portal. Meals are covered up to 60 EUR per day while travelling.
"""
BENCH_QUESTION = "How many days of paid annual leave do employees get?"


@dataclass(frozen=True)
class DeferralFigures:
    requests: int
    model_delay_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    deferred: int  # interactions whose defer callback arrived
    answered_before_all_deferred: int  # should be 0: no answer waited for, none finished first
    answered: int  # final answers sent after the model was released
    cpu_cores: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fake_discord_api():
    from tests.fakes import discord_api

    return discord_api


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    # Nearest rank: with 20 samples p99 is the slowest one, never an interpolation below it.
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def measure_deferral_latency(
    docent,
    settings: Settings,
    *,
    concurrent: int = 20,
    model_delay_s: float = 30.0,
    release: threading.Event | None = None,
    question: str = BENCH_QUESTION,
    guild_id: int = BENCH_GUILD,
    channel_id: int = BENCH_CHANNEL,
    spacing_s: float = 0.0,
) -> DeferralFigures:
    """Dispatch `concurrent` `/ask` interactions at once; time dispatch → defer callback at the fake API.

    `docent` should be built with a chat model that takes `model_delay_s` and stops waiting when
    `release` is set (e.g. `FakeChatModel`). Must run inside an event loop.
    `spacing_s` > 0 dispatches one interaction every `spacing_s` instead of all at once, so later
    ones arrive while earlier ones are already retrieving in worker threads.
    """
    fakes = _fake_discord_api()
    DiscordHarness, slash_command = fakes.DiscordHarness, fakes.slash_command

    harness = await DiscordHarness.start(docent, settings)
    try:
        api = harness.api
        tokens: list[str] = []
        for i in range(concurrent):
            payload = slash_command(
                "ask",
                [{"type": 3, "name": "question", "value": question}],
                # One user each: the per-user rate limit is not what this measures.
                user_id=700_000_000_000_100_000 + i,
                guild_id=guild_id,
                channel_id=channel_id,
            )
            tokens.append(harness.dispatch(payload))
            if spacing_s > 0:
                await asyncio.sleep(spacing_s)
        await api.wait_for(lambda: all(api.callback_for(t) is not None for t in tokens), timeout=model_delay_s)

        def finished(token: str) -> bool:
            return any(
                ((c.json or {}).get("embeds") or [{}])[-1].get("footer", {}).get("text") not in (None, "writing…")
                for c in api.replies_for(token)
            )

        answered_early = sum(finished(t) for t in tokens)
        latencies_ms = [(api.callback_for(t).at - harness.dispatched_at[t]) * 1000 for t in tokens]  # type: ignore[union-attr]
        if release is not None:
            release.set()
        try:
            await api.wait_for(lambda: all(finished(t) for t in tokens), timeout=model_delay_s + 60)
        except asyncio.TimeoutError:
            pass
        return DeferralFigures(
            requests=concurrent,
            model_delay_s=model_delay_s,
            p50_ms=round(statistics.median(latencies_ms), 1),
            p99_ms=round(_percentile(latencies_ms, 99), 1),
            max_ms=round(max(latencies_ms), 1),
            deferred=len(latencies_ms),
            answered_before_all_deferred=answered_early,
            answered=sum(finished(t) for t in tokens),
            cpu_cores=os.cpu_count() or 0,
        )
    finally:
        if release is not None:
            release.set()
        await harness.close()


def run_discord_bench(settings: Settings, *, concurrent: int = 20, model_delay_s: float = 30.0) -> dict[str, Any]:
    """`python -m tests.loadtests discord`: a throwaway data dir, one document, 20 concurrent /ask, a 30 s model."""
    from bot.core import Docent

    model = FakeChatModel(delay_s=model_delay_s)
    with tempfile.TemporaryDirectory(prefix="docent-discord-bench-") as tmp:
        bench_settings = settings.model_copy(
            update={"data_dir": Path(tmp), "database_url": None, "redis_url": None, "qdrant_url": None}
        )
        docent = Docent.from_settings(bench_settings, chat_model=model)
        try:
            operator = Actor(platform="cli", workspace=str(BENCH_GUILD), user_id="bench", is_platform_admin=True)
            docent.admin.upload(operator, "handbook.md", BENCH_DOCUMENT.encode(), Scope.workspace_wide(str(BENCH_GUILD)))
            started = time.perf_counter()
            burst = asyncio.run(
                measure_deferral_latency(
                    docent, bench_settings, concurrent=concurrent, model_delay_s=model_delay_s, release=model.release
                )
            )
            model.release.clear()
            staggered = asyncio.run(
                measure_deferral_latency(
                    docent, bench_settings, concurrent=concurrent, model_delay_s=model_delay_s,
                    release=model.release, spacing_s=0.05, question=BENCH_QUESTION + " Please answer briefly.",
                )
            )
            result = burst.to_dict()
            result["staggered_50ms"] = {"p50_ms": staggered.p50_ms, "p99_ms": staggered.p99_ms,
                                        "max_ms": staggered.max_ms, "deferred": staggered.deferred,
                                        "answered_before_all_deferred": staggered.answered_before_all_deferred}
            result["wall_s"] = round(time.perf_counter() - started, 2)
            return result
        finally:
            model.release.set()
            docent.close()
