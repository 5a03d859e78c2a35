"""Which chat model answers (Claude or the offline extractive one) and our retry policy for Claude.

The SDK's own retries are switched off (`max_retries=0`) so one policy decides: retry what is
transient (408/409/429/5xx/529, timeouts, dropped connections) with exponential backoff and
jitter, honour `retry-after` up to a cap, and never retry what can't succeed — a spend or billing
limit (even though it arrives as a 429), bad requests, bad keys, forbidden models.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Callable, TypeVar

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from knowledge.chain import ABSTAIN_TOOL
from knowledge.extractive import ExtractiveChatModel

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Error types the API (or an SSE `error` event, which arrives with HTTP 200) uses for transient trouble.
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "rate_limit_error", "api_error", "timeout_error"})
# Markers of limits that no amount of waiting within a request will lift.
SPEND_LIMIT_MARKERS = (
    "enforced_spend_limit_reached",
    "spend limit",
    "spending limit",
    "billing",
    "credit balance",
    "insufficient_quota",
)
MAX_RETRY_WAIT_S = 20.0  # longest single wait; a server asking for more is not retried
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0


def make_chat_model(settings: Settings) -> BaseChatModel:
    """Claude when an API key is configured, else the free offline extractive model."""
    if settings.anthropic_api_key is None or not settings.anthropic_api_key.get_secret_value():
        return ExtractiveChatModel()
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(
        model=settings.llm_model,
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        max_tokens=settings.max_tokens,
        timeout=settings.llm_timeout_s,
        max_retries=0,  # our policy below decides
        # `streaming` is deliberately left unset: invoke() stays a plain JSON call and .stream()
        # streams. Setting it to False would make langchain-core refuse to stream at all.
        stream_usage=True,
    )


def with_abstain_tool(chat_model: BaseChatModel) -> Runnable | None:
    """`chat_model` with docent's "not in the documents" tool bound (`knowledge.chain.ABSTAIN_TOOL`,
    tool choice auto: it may answer or call it), or None for a model that takes no tools — the
    offline extractive one, which never needs it (the gate has decided before it is called)."""
    if isinstance(chat_model, ExtractiveChatModel):
        return None
    try:
        return chat_model.bind_tools([ABSTAIN_TOOL], tool_choice="auto")
    except NotImplementedError:  # BaseChatModel's default: a model without tool calling
        return None


def model_name_of(chat_model: BaseChatModel) -> str:
    for attr in ("model", "model_name"):
        name = getattr(chat_model, attr, None)
        if isinstance(name, str) and name:
            return name
    return chat_model._llm_type


# --- classifying failures ------------------------------------------------------------------------


def _error_body_text(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    try:
        text = json.dumps(body) if body is not None else ""
    except (TypeError, ValueError):
        text = str(body)
    return f"{text} {getattr(exc, 'message', '')}".lower()


def _error_type(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return error["type"]
        if isinstance(body.get("type"), str) and body["type"] != "error":
            return body["type"]
    return None


def _sdk_errors(*names: str) -> tuple[type[BaseException], ...]:
    """The Anthropic SDK's error classes of these names if this process has imported the SDK (the
    Claude model does), else none: an exception can't be one of them then. Not imported here: it
    costs ~3 s of every CLI start (`docent ingest`, an offline `docent ask`), which never talk to
    Claude."""
    sdk = sys.modules.get("anthropic")
    return tuple(getattr(sdk, name) for name in names) if sdk is not None else ()


def is_spend_limit(exc: BaseException) -> bool:
    """A spend/billing limit: retrying only burns time (and, at worst, the account's standing)."""
    if not isinstance(exc, _sdk_errors("APIStatusError")):
        return False
    text = _error_body_text(exc)
    return any(marker in text for marker in SPEND_LIMIT_MARKERS)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, _sdk_errors("APIStatusError")):
        if is_spend_limit(exc):
            return False
        if exc.status_code in RETRYABLE_STATUS:
            return True
        return _error_type(exc) in RETRYABLE_ERROR_TYPES
    # APITimeoutError is an APIConnectionError. Raw httpx errors can surface mid-stream.
    return isinstance(exc, (*_sdk_errors("APIConnectionError"), httpx.TimeoutException, httpx.TransportError))


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (*_sdk_errors("APITimeoutError"), httpx.TimeoutException))


def retry_after_s(exc: BaseException, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now()).total_seconds())


def backoff_s(retry_number: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 … s (capped), each scaled by 0.5–1.0."""
    rng = rng or random
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retry_number) * (0.5 + rng.random() / 2)


def call_with_retries(
    call: Callable[[], T],
    *,
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Run `call`, retrying transient failures at most `max_retries` times; re-raise the last error."""
    retry = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_retryable(exc) or retry >= max_retries:
                raise
            hinted = retry_after_s(exc)
            if hinted is not None and hinted > MAX_RETRY_WAIT_S:
                logger.warning("LLM asked us to wait %.0f s (over %.0f s); not retrying", hinted, MAX_RETRY_WAIT_S)
                raise
            wait = hinted if hinted is not None else backoff_s(retry, rng)
            logger.info(
                "LLM call failed (%s, status %s); retry %d/%d in %.2f s",
                type(exc).__name__, getattr(exc, "status_code", "-"), retry + 1, max_retries, wait,
            )
            if on_retry:
                on_retry(retry + 1, exc, wait)
            sleep(wait)
            retry += 1
