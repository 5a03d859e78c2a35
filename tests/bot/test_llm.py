"""Model choice, pricing and the retry policy, through the real anthropic SDK and ChatAnthropic."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import anthropic
import httpx
import pytest
from pydantic import SecretStr
from langchain_anthropic import ChatAnthropic

from bot.llm import (
    MAX_RETRY_WAIT_S,
    backoff_s,
    call_with_retries,
    is_retryable,
    is_spend_limit,
    is_timeout,
    make_chat_model,
    model_name_of,
    retry_after_s,
)
from bot.pricing import FALLBACK_PRICE, cost_usd, max_cost_usd, price_of
from knowledge.extractive import ExtractiveChatModel


@pytest.fixture
def claude_settings(settings, fake_anthropic):
    return settings.model_copy(
        update={"anthropic_api_key": SecretStr("test-key"), "anthropic_base_url": fake_anthropic.url, "llm_timeout_s": 2.0}
    )


def _status_error(fake, claude_settings):
    """Provoke the queued error through the real client and return the exception it raised."""
    with pytest.raises(Exception) as info:
        make_chat_model(claude_settings).invoke("hi")
    return info.value


# --- pricing ------------------------------------------------------------------------------------


def test_cost_is_tokens_times_price():
    assert cost_usd("claude-haiku-4-5", 1_000_000, 0) == pytest.approx(1.0)
    assert cost_usd("claude-haiku-4-5", 2000, 500) == pytest.approx(2000 * 1e-6 + 500 * 5e-6)
    assert cost_usd("claude-sonnet-4-5", 1000, 1000) == pytest.approx(0.003 + 0.015)
    assert cost_usd("claude-opus-4-1", 1000, 1000) == pytest.approx(0.015 + 0.075)
    assert cost_usd("claude-3-5-haiku", 1000, 1000) == pytest.approx(0.0008 + 0.004)
    assert cost_usd("extractive", 10_000, 10_000) == 0.0


def test_dated_aliases_resolve_by_prefix():
    assert price_of("claude-haiku-4-5-20251001") == price_of("claude-haiku-4-5")
    assert price_of("claude-3-5-haiku-latest") == price_of("claude-3-5-haiku")
    assert price_of("claude-sonnet-4-5-20250929").output_per_mtok == 15.0


def test_unknown_model_costs_the_most_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.pricing"):
        assert price_of("claude-mystery-9") == FALLBACK_PRICE
    assert FALLBACK_PRICE.output_per_mtok == 75.0
    assert "claude-mystery-9" in caplog.text


def test_max_cost_charges_all_max_tokens():
    assert max_cost_usd("claude-haiku-4-5", 2500, 600) == pytest.approx(2500 * 1e-6 + 600 * 5e-6)


# --- model choice -------------------------------------------------------------------------------


def test_without_a_key_the_model_is_extractive(settings):
    model = make_chat_model(settings)
    assert isinstance(model, ExtractiveChatModel)
    assert model_name_of(model) == "extractive"


def test_with_a_key_claude_is_configured_from_settings(claude_settings, fake_anthropic):
    model = make_chat_model(claude_settings)
    assert isinstance(model, ChatAnthropic)
    assert model.max_retries == 0  # our policy, not the SDK's
    assert model_name_of(model) == "claude-haiku-4-5"
    fake_anthropic.reply("ok", input_tokens=11, output_tokens=2)
    reply = model.invoke("hello")
    assert reply.content == "ok"
    request = fake_anthropic.requests[0]
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["max_tokens"] == claude_settings.max_tokens
    assert request.body["model"] == "claude-haiku-4-5"


# --- classifying real SDK errors --------------------------------------------------------------


def test_rate_limit_is_retryable_with_its_retry_after(claude_settings, fake_anthropic):
    fake_anthropic.rate_limited("7")
    exc = _status_error(fake_anthropic, claude_settings)
    assert isinstance(exc, anthropic.RateLimitError)
    assert is_retryable(exc) and not is_spend_limit(exc)
    assert retry_after_s(exc) == 7.0


def test_spend_limit_429_is_never_retryable(claude_settings, fake_anthropic):
    fake_anthropic.spend_limit()
    exc = _status_error(fake_anthropic, claude_settings)
    assert isinstance(exc, anthropic.RateLimitError) and exc.status_code == 429
    assert is_spend_limit(exc) and not is_retryable(exc)


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (529, "overloaded_error", True),
        (500, "api_error", True),
        (503, "api_error", True),
        (408, "timeout_error", True),
        (400, "invalid_request_error", False),
        (401, "authentication_error", False),
        (403, "permission_error", False),
    ],
)
def test_status_codes_classified(claude_settings, fake_anthropic, status, error_type, retryable):
    fake_anthropic.error(status, error_type, "boom")
    exc = _status_error(fake_anthropic, claude_settings)
    assert getattr(exc, "status_code", None) == status
    assert is_retryable(exc) is retryable


def test_timeout_is_retryable(claude_settings, fake_anthropic):
    fake_anthropic.delay(5)
    exc = _status_error(fake_anthropic, claude_settings.model_copy(update={"llm_timeout_s": 0.3}))
    assert isinstance(exc, anthropic.APITimeoutError)
    assert is_retryable(exc)


def test_retry_after_as_http_date(claude_settings, fake_anthropic):
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    fake_anthropic.rate_limited(format_datetime(now + timedelta(seconds=12), usegmt=True))
    exc = _status_error(fake_anthropic, claude_settings)
    assert retry_after_s(exc, now=lambda: now) == pytest.approx(12.0)


# --- the retry loop ---------------------------------------------------------------------------


class Flaky:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def _connection_error():
    import httpx

    return anthropic.APIConnectionError(request=httpx.Request("POST", "http://x/v1/messages"))


def test_backoff_grows_with_jitter_and_caps():
    rng = random.Random(1)
    waits = [backoff_s(i, rng) for i in range(8)]
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0
    assert 1.0 <= waits[2] <= 2.0
    assert all(w <= 8.0 for w in waits)
    assert len({round(w, 6) for w in waits}) == len(waits)  # jittered, not a fixed ladder


def test_call_with_retries_stops_after_max_retries():
    sleeps = []
    flaky = Flaky([_connection_error() for _ in range(5)])
    with pytest.raises(anthropic.APIConnectionError):
        call_with_retries(flaky, max_retries=2, sleep=sleeps.append)
    assert flaky.calls == 3 and len(sleeps) == 2


def test_call_with_retries_recovers():
    sleeps = []
    flaky = Flaky([_connection_error()])
    assert call_with_retries(flaky, max_retries=2, sleep=sleeps.append) == "done"
    assert flaky.calls == 2 and len(sleeps) == 1


def test_non_retryable_errors_raise_at_once():
    flaky = Flaky([ValueError("bug")])
    with pytest.raises(ValueError):
        call_with_retries(flaky, max_retries=3, sleep=lambda s: None)
    assert flaky.calls == 1


def test_retry_after_beyond_the_cap_is_not_waited_for(claude_settings, fake_anthropic):
    model = make_chat_model(claude_settings)
    fake_anthropic.rate_limited(str(int(MAX_RETRY_WAIT_S * 3)))
    sleeps = []
    with pytest.raises(anthropic.RateLimitError):
        call_with_retries(lambda: model.invoke("hi"), max_retries=3, sleep=sleeps.append)
    assert sleeps == [] and fake_anthropic.attempts == 1


def test_nothing_offline_imports_the_anthropic_sdk(tmp_path):
    # The CLI's commands all build a Docent (bot.core); without a key its model is the extractive
    # one, and the SDK (seconds of import) is never loaded: the error classifiers look it up only
    # in what is already imported.
    import os
    import subprocess
    import sys

    code = (
        "import sys, connectors.cli.app, bot.core\n"
        "from bot.llm import is_retryable, make_chat_model\n"
        "from bot.settings import Settings\n"
        "model = make_chat_model(Settings(_env_file=None))\n"
        "assert not is_retryable(ValueError('x'))\n"
        "print(type(model).__name__, 'anthropic' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"} | {"DOCENT_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ExtractiveChatModel", "False"]


def test_errors_are_classified_once_the_sdk_is_loaded():
    request = httpx.Request("POST", "https://api.anthropic.test/v1/messages")
    assert is_retryable(anthropic.APIConnectionError(request=request))
    assert is_timeout(anthropic.APITimeoutError(request=request))
    assert is_timeout(httpx.ReadTimeout("slow"))
    assert not is_retryable(ValueError("not a network error"))
