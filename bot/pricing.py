"""What a model call costs, in USD. The one pricing table the budget guards and the ledger share."""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    input_per_mtok: float  # USD per million input tokens
    output_per_mtok: float  # USD per million output tokens


# Public list prices. Dated ids ("claude-haiku-4-5-20251001") and "-latest" aliases resolve by
# prefix; the longest matching prefix wins so "claude-3-5-haiku" never matches a shorter family.
PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
}
FREE_MODELS = frozenset({"extractive"})
# Unknown models are charged as the most expensive known one, so cost caps fail safe.
FALLBACK_PRICE = max(PRICES.values(), key=lambda p: (p.output_per_mtok, p.input_per_mtok))

_warned: set[str] = set()


def price_of(model: str) -> Price:
    if model in FREE_MODELS:
        return Price(0.0, 0.0)
    matches = [prefix for prefix in PRICES if model == prefix or model.startswith(prefix + "-")]
    if matches:
        return PRICES[max(matches, key=len)]
    if model not in _warned:
        _warned.add(model)
        logger.warning("no price known for model %r; charging the highest known price", model)
    return FALLBACK_PRICE


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    price = price_of(model)
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1_000_000


def max_cost_usd(model: str, input_tokens: int, max_tokens: int) -> float:
    """The most one call can cost: all of `input_tokens` plus a full `max_tokens` reply."""
    return cost_usd(model, input_tokens, max_tokens)
