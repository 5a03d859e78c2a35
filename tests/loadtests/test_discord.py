"""Discord's 3-second acknowledgement never waits for the model.

Twenty `/ask` interactions arrive at once while the chat model is held (it would take 30 s): every
one must be deferred while the model is still holding, and each answer must follow the release.
(How fast the deferrals are is a benchmark — `python -m tests.loadtests discord` — not an assertion here.)
"""

from __future__ import annotations

from admin.types import Actor
from bot.core import Docent
from tests.fakes.chat_model import FakeChatModel
from tests.loadtests.discord import (
    BENCH_DOCUMENT,
    BENCH_GUILD,
    measure_deferral_latency,
)
from knowledge.types import Scope


async def test_twenty_concurrent_asks_are_all_deferred_before_the_slow_model_answers(settings):
    model = FakeChatModel(delay_s=30.0)
    docent = Docent.from_settings(settings, chat_model=model)
    try:
        ops = Actor(platform="cli", workspace=str(BENCH_GUILD), user_id="ops", is_platform_admin=True)
        docent.admin.upload(ops, "handbook.md", BENCH_DOCUMENT.encode(), Scope.workspace_wide(str(BENCH_GUILD)))
        figures = await measure_deferral_latency(docent, settings, concurrent=20, model_delay_s=30.0,
                                                 release=model.release)
    finally:
        model.release.set()
        docent.close()
    assert figures.deferred == 20
    assert figures.answered_before_all_deferred == 0  # the model was still holding every answer
    assert figures.answered == 20  # and each interaction got its answer after the release
    assert figures.p99_ms >= figures.p50_ms > 0
