"""Turns a question and its retrieved hits into a cited draft answer, with Claude or offline.

One call: build the delimited prompt, ask the model (streaming if the caller shows progress),
retry transient failures, fall back to the extractive model if Claude stays unavailable, keep
only the sources the answer cites (renumbered 1..m), and account tokens, cost and latency.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

from bot.llm import call_with_retries, is_spend_limit, is_timeout, make_chat_model, model_name_of
from bot.pricing import cost_usd, max_cost_usd
from bot.types import PriorTurn, Source, Usage
from knowledge.chain import (
    build_messages,
    cite_in_first_appearance_order,
    fit_sources,
    parse_citations,
    renumber_citations,
    system_prompt,
)
from knowledge.extractive import MODEL_NAME as EXTRACTIVE_MODEL
from knowledge.extractive import GATED_MIN_COVERAGE, ExtractiveChatModel
from knowledge.types import Hit

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

FALLBACK_NOTICE = "Claude is unavailable right now, so this answer was extracted directly from the documents."
UNCITED_SOURCES_SHOWN = 3
SNIPPET_CHARS = 200
# Source/message tags, role labels and message framing on top of the budgeted text.
_PROMPT_OVERHEAD_TOKENS = 200
_BUDGET_CHARS_PER_TOKEN = 4  # how knowledge.chain turns token budgets into characters
_WORST_CHARS_PER_TOKEN = 2


@dataclass(frozen=True)
class DraftAnswer:
    text: str  # with [n] renumbered to 1..m over the cited sources
    sources: tuple[Source, ...]  # `[n]` in text is sources[n-1]
    usage: Usage
    notices: tuple[str, ...] = ()
    fell_back: bool = False
    cited: bool = True  # False: the model cited no source, i.e. it found no answer in them


def history_pairs(history: Sequence[PriorTurn]) -> list[tuple[str, str]]:
    """PriorTurns → (role, text): the asker is "user", docent is "assistant", anyone else keeps
    their name so the prompt quotes them as data."""
    pairs = []
    for turn in history:
        if turn.is_bot or turn.author == "assistant":
            pairs.append(("assistant", turn.text))
        elif turn.author == "user":
            pairs.append(("user", turn.text))
        else:
            pairs.append((turn.author or "someone", turn.text))
    return pairs


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SNIPPET_CHARS:
        return text
    return text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def source_from_hit(n: int, hit: Hit) -> Source:
    chunk = hit.chunk
    return Source(
        n=n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        source=chunk.source,
        page=chunk.page,
        section=" › ".join(chunk.heading_path),
        snippet=_snippet(chunk.text),
        url=chunk.url,
    )


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


class AnswerEngine:
    def __init__(
        self,
        settings: Settings,
        chat_model: BaseChatModel | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._model = chat_model if chat_model is not None else make_chat_model(settings)
        self._fallback = ExtractiveChatModel(min_coverage=GATED_MIN_COVERAGE)
        self._sleep = sleep

    @property
    def model_name(self) -> str:
        return model_name_of(self._model)

    def system_prompt(self, canary: str | None = None) -> str:
        """The exact system prompt sent with this canary (the output guard checks for leaks of it)."""
        return system_prompt(canary)

    @property
    def is_offline(self) -> bool:
        return isinstance(self._model, ExtractiveChatModel)

    def max_cost_usd(self, question: str) -> float:
        """Worst case for one answer: full source and history budgets, the question and the
        system prompt at the input price, plus `max_tokens` at the output price.

        The budgets are counted in characters (4 per budgeted token), and this bound assumes a
        dense 2 characters per real token, so text that tokenizes badly (code, non-Latin
        scripts) still can't make the real bill exceed the reservation.
        """
        if self.is_offline:
            return 0.0
        s = self._settings
        chars = (
            (s.context_token_budget + s.history_token_budget) * _BUDGET_CHARS_PER_TOKEN
            + len(question)
            + len(system_prompt("x" * 64))
        )
        input_tokens = chars // _WORST_CHARS_PER_TOKEN + _PROMPT_OVERHEAD_TOKENS
        return max_cost_usd(self.model_name, input_tokens, s.max_tokens)

    def answer(
        self,
        question: str,
        hits: list[Hit],
        *,
        history: tuple[PriorTurn, ...] = (),
        on_delta: Callable[[str], None] | None = None,
        canary: str | None = None,
    ) -> DraftAnswer:
        budget = self._settings.context_token_budget
        n_sources = len(fit_sources(hits, budget))
        messages = build_messages(
            question, hits, history_pairs(history), canary, budget, self._settings.history_token_budget
        )
        started = time.perf_counter()
        notices: tuple[str, ...] = ()
        fell_back = False
        try:
            message = call_with_retries(
                lambda: self._run(self._model, messages, on_delta, n_sources),
                max_retries=0 if self.is_offline else self._settings.llm_max_retries,
                sleep=self._sleep,
            )
            model = self.model_name
        except Exception as exc:
            if self.is_offline:
                raise
            self._log_failure(exc)
            message = self._run(self._fallback, messages, on_delta, n_sources)
            model = EXTRACTIVE_MODEL
            notices = (FALLBACK_NOTICE,)
            fell_back = True
        latency_ms = (time.perf_counter() - started) * 1000

        usage_meta = message.usage_metadata or {}
        if fell_back:
            # Only tokens actually billed count; a failed Claude call's are unknown (normally 0).
            input_tokens = output_tokens = 0
        else:
            input_tokens = int(usage_meta.get("input_tokens", 0))
            output_tokens = int(usage_meta.get("output_tokens", 0))
        usage = Usage(
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
            latency_ms=latency_ms,
        )
        raw = _text_of(message)
        text, sources = self._cite(raw, hits, n_sources)
        cited = bool(parse_citations(raw, n_sources)[1])
        return DraftAnswer(
            text=text.strip(), sources=sources, usage=usage, notices=notices, fell_back=fell_back, cited=cited
        )

    def _cite(self, raw: str, hits: list[Hit], n_sources: int) -> tuple[str, tuple[Source, ...]]:
        cleaned, cited = parse_citations(raw, n_sources)
        if not cited:
            # Nothing cited: show what the answer was drawn from, without inventing [n] marks.
            shown = hits[: min(UNCITED_SOURCES_SHOWN, n_sources)]
            return cleaned, tuple(source_from_hit(i + 1, h) for i, h in enumerate(shown))
        text = renumber_citations(cleaned, cited)
        return text, tuple(source_from_hit(new, hits[old - 1]) for new, old in enumerate(cited, start=1))

    @staticmethod
    def _safe_delta(on_delta: Callable[[str], None]) -> Callable[[str], None]:
        """A failing progress display (e.g. a platform edit rejected) must not fail the answer."""

        def show(text: str) -> None:
            try:
                on_delta(text)
            except Exception:
                logger.warning("progress callback failed; continuing without it", exc_info=True)

        return show

    def _run(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        on_delta: Callable[[str], None] | None,
        n_sources: int,
    ) -> AIMessage:
        if on_delta is not None:
            on_delta = self._safe_delta(on_delta)
        if on_delta is None or not self._settings.streaming:
            result = model.invoke(messages)
            if on_delta is not None:
                on_delta(cite_in_first_appearance_order(_text_of(result), n_sources)[0])
            return result  # type: ignore[return-value]
        merged: AIMessageChunk | None = None
        shown = ""
        for chunk in model.stream(messages):
            merged = chunk if merged is None else merged + chunk
            text = _text_of(merged)
            # First-appearance numbering is stable as text grows, so partial text already
            # carries the final [n] numbers.
            partial = cite_in_first_appearance_order(text, n_sources)[0]
            if partial != shown:
                shown = partial
                on_delta(partial)
        if merged is None:
            return AIMessage(content="")
        return AIMessage(
            content=_text_of(merged),
            usage_metadata=merged.usage_metadata,
            response_metadata=merged.response_metadata,
        )

    def _log_failure(self, exc: Exception) -> None:
        kind = "spend limit" if is_spend_limit(exc) else "timeout" if is_timeout(exc) else "error"
        # Never log the exception's request (headers carry the key); type and status are enough.
        logger.warning(
            "LLM unavailable (%s: %s, status %s); answering extractively",
            kind, type(exc).__name__, getattr(exc, "status_code", "-"),
        )
