"""Turns a question into a cited draft answer by running the answer chain (knowledge/chain.py).

Per request the engine builds the one LCEL chain — retrieve → gate → prompt → before_model →
Claude (our retry policy) `with_fallbacks` the extractive model — runs it, streams partial text
to the caller through a callback, keeps only the sources the answer cites (renumbered 1..m) and
accounts tokens, cost and latency. It also prices the worst case of an exact prompt, which the
core reserves against the caps in `before_model`, right before the model is called.

Claude has one tool, `not_in_documents` (knowledge.chain.ABSTAIN_TOOL): calling it is its
structured "the documents don't answer this", which becomes an abstention draft (`abstention`
set, still billed). The extractive fallback has no tool: behind the gate it always answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from bot import metrics
from bot.llm import (
    call_with_retries,
    is_spend_limit,
    is_timeout,
    make_chat_model,
    model_name_of,
    with_abstain_tool,
)
from bot.pricing import cost_usd, max_cost_usd
from bot.types import PriorTurn, Source, Usage
from knowledge.chain import (
    ABSTAIN_TOOL_NAME,
    Abstention,
    AnswerRequest,
    ChainResult,
    Prompt,
    StaticHits,
    abstention_of,
    build_answer_chain,
    cite_in_first_appearance_order,
    parse_citations,
    renumber_citations,
    system_prompt,
)
from knowledge.extractive import ExtractiveChatModel
from knowledge.extractive import MODEL_NAME as EXTRACTIVE_MODEL
from knowledge.types import Hit

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

FALLBACK_NOTICE = "Claude is unavailable right now, so this answer was extracted directly from the documents."
UNCITED_SOURCES_SHOWN = 3
RELATED_SHOWN = 3  # closest passages offered with an abstention, one per document
SNIPPET_CHARS = 200
# Role and message framing per message on top of its text, and the request's own framing.
_TOKENS_PER_MESSAGE = 16
_TOKENS_PER_REQUEST = 64

Gate = Callable[[str, Sequence[Hit]], Any]


@dataclass(frozen=True)
class DraftAnswer:
    text: str  # with [n] renumbered to 1..m over the cited sources
    sources: tuple[Source, ...]  # `[n]` in text is sources[n-1]
    usage: Usage
    notices: tuple[str, ...] = ()
    fell_back: bool = False
    cited: bool = True  # False: the model cited no source, i.e. it found no answer in them
    generated: bool = True  # False: the gate found the documents don't answer; no model was called
    hits: tuple[Hit, ...] = ()  # what retrieval found, best first
    answerability: Any = None  # the gate's verdict (knowledge.answerability.Answerability)
    # Set when the model reported "not in the documents" through its tool: no answer text, but
    # the call was made (and billed: `usage`).
    abstention: Abstention | None = None

    @property
    def abstained(self) -> bool:
        """The gate or the model found that the documents don't answer (an uncited answer aside)."""
        return not self.generated or self.abstention is not None


def history_pairs(history: Sequence[PriorTurn]) -> list[tuple[str, str]]:
    """PriorTurns → (role, text): the asker is "user", docent is "assistant", anyone else keeps
    their name so the prompt quotes them as data."""
    return [(turn.role, turn.text) for turn in history]


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


def related_sources(hits: Sequence[Hit], limit: int = RELATED_SHOWN) -> tuple[Source, ...]:
    """The closest passages, best first and one per document, offered beside an abstention as
    "related, not an answer"."""
    best_per_doc: dict[str, Hit] = {}
    for hit in hits:
        best_per_doc.setdefault(hit.chunk.doc_id, hit)
    return tuple(source_from_hit(n, hit) for n, hit in enumerate(list(best_per_doc.values())[:limit], start=1))


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def prompt_token_bound(messages: Sequence[BaseMessage]) -> int:
    """An upper bound on the input tokens of `messages` for any byte-level BPE tokenizer
    (Claude's included): no token is shorter than one UTF-8 byte, so CJK, emoji or code can't
    make the bill exceed it, whatever their characters-per-token."""
    return _TOKENS_PER_REQUEST + sum(
        len(text_of(m).encode("utf-8")) + _TOKENS_PER_MESSAGE for m in messages
    )


class _StreamedText(BaseCallbackHandler):
    """Shows a streaming answer: collects the model's tokens and calls `show(text)` with the
    partial text, its citations already numbered as the final answer will number them
    (first-appearance numbering is stable as text grows). A new model run — a retry or the
    fallback — starts the display over. Once the model starts calling the abstention tool nothing
    more is shown: the final render (an abstention) replaces what was. A failing display never
    fails the answer."""

    def __init__(self, show: Callable[[str], None]):
        self._show = show
        self.n_sources = 0
        self._text = ""
        self._shown = ""
        self.streamed = False
        self.abstaining = False

    def on_chat_model_start(self, serialized: dict, messages: list, *, run_id: UUID, **kwargs: Any) -> None:
        self._text = ""
        self.abstaining = False

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        message = getattr(chunk, "message", None)
        # The tool call's first chunk names the tool; its arguments follow as JSON pieces.
        if any(c.get("name") == ABSTAIN_TOOL_NAME for c in getattr(message, "tool_call_chunks", None) or ()):
            self.abstaining = True
        if self.abstaining:
            return
        piece = text_of(message) if message is not None else str(token or "")
        if not piece:
            return
        self._text += piece
        self.show(cite_in_first_appearance_order(self._text, self.n_sources)[0])

    def show(self, text: str) -> None:
        if text == self._shown:
            return
        self._shown = text
        self.streamed = True
        try:
            self._show(text)
        except Exception:
            logger.warning("progress callback failed; continuing without it", exc_info=True)


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
        tooled = with_abstain_tool(self._model)
        self._abstain_tool = tooled is not None
        self._primary = tooled if tooled is not None else self._model
        self._fallback = ExtractiveChatModel()
        self._sleep = sleep

    @property
    def model_name(self) -> str:
        return model_name_of(self._model)

    @property
    def is_offline(self) -> bool:
        return isinstance(self._model, ExtractiveChatModel)

    def system_prompt(self, canary: str | None = None) -> str:
        """The exact system prompt sent with this canary (the output guard checks for leaks of it)."""
        return system_prompt(canary, abstain_tool=self._abstain_tool)

    def worst_case_usd(self, prompt: Prompt) -> float:
        """The most this exact prompt can cost: every input token at the bound, plus a full
        `max_tokens` reply. Free when answering offline."""
        if self.is_offline:
            return 0.0
        return max_cost_usd(self.model_name, prompt_token_bound(prompt.messages), self._settings.max_tokens)

    # --- the chain ----------------------------------------------------------------------------
    def chain(
        self,
        retriever: BaseRetriever,
        *,
        gate: Gate | None = None,
        before_model: Callable[[Prompt], None] | None = None,
        stream: bool = False,
    ) -> Runnable:
        """The answer chain over `retriever` with this engine's model, retry policy and fallback."""
        primary = self._primary.bind(stream=True) if stream else self._primary
        fallback = None if self.is_offline else (self._fallback.bind(stream=True) if stream else self._fallback)
        max_retries = 0 if self.is_offline else self._settings.llm_max_retries

        def call_model(messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
            try:
                return call_with_retries(
                    lambda: primary.invoke(messages, config), max_retries=max_retries, sleep=self._sleep,
                    on_retry=lambda *_: metrics.llm_retried(self.model_name),
                )
            except Exception as exc:
                if fallback is not None:
                    self._log_failure(exc)
                raise

        s = self._settings
        return build_answer_chain(
            retriever,
            RunnableLambda(call_model, name=self.model_name),
            fallback=fallback,
            gate=gate,
            before_model=before_model,
            context_token_budget=s.context_token_budget,
            history_token_budget=s.history_token_budget,
            abstain_tool=self._abstain_tool,
        )

    def answer(
        self,
        question: str,
        retriever: BaseRetriever | Sequence[Hit],
        *,
        history: tuple[PriorTurn, ...] = (),
        on_delta: Callable[[str], None] | None = None,
        canary: str | None = None,
        gate: Gate | None = None,
        before_model: Callable[[Prompt], None] | None = None,
    ) -> DraftAnswer:
        """Run the chain for `question` over a retriever (or hits found earlier)."""
        if not isinstance(retriever, BaseRetriever):
            retriever = StaticHits(hits=list(retriever))
        streamed = _StreamedText(on_delta) if on_delta is not None else None

        def prepare(prompt: Prompt) -> None:
            if streamed is not None:
                streamed.n_sources = prompt.n_sources
            if before_model is not None:
                before_model(prompt)

        chain = self.chain(
            retriever, gate=gate, before_model=prepare, stream=streamed is not None and self._settings.streaming
        )
        started = time.perf_counter()
        result: ChainResult = chain.invoke(
            AnswerRequest(question, tuple(history_pairs(history)), canary, tuple(t.to_docent for t in history)),
            config={"callbacks": [streamed]} if streamed is not None else None,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        if result.message is None:  # the gate: no model was called
            return DraftAnswer("", (), Usage(model="none", latency_ms=latency_ms), cited=False, generated=False,
                               hits=result.hits, answerability=result.answerability)
        return replace(self._draft(result, streamed, latency_ms), answerability=result.answerability)

    # --- after the model ----------------------------------------------------------------------
    def _draft(self, result: ChainResult, streamed: _StreamedText | None, latency_ms: float) -> DraftAnswer:
        message, prompt = result.message, result.prompt
        assert message is not None and prompt is not None
        answered_by = (message.response_metadata or {}).get("model_name") or self.model_name
        fell_back = not self.is_offline and answered_by == EXTRACTIVE_MODEL
        usage_meta = message.usage_metadata or {}
        if fell_back:
            # Only tokens actually billed count; a failed Claude call's are unknown (normally 0).
            input_tokens = output_tokens = 0
            model = EXTRACTIVE_MODEL
        else:
            input_tokens = int(usage_meta.get("input_tokens", 0))
            output_tokens = int(usage_meta.get("output_tokens", 0))
            model = self.model_name
        usage = Usage(
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
            latency_ms=latency_ms,
        )
        abstention = None if fell_back else abstention_of(message)
        if abstention is not None:
            # Whatever text came before the call is not an answer; the caller renders an abstention.
            return DraftAnswer("", (), usage, cited=False, hits=result.hits, abstention=abstention)
        raw = text_of(message)
        n_sources = prompt.n_sources
        if streamed is not None:
            # Not streamed (streaming off, or a model without streaming): show the whole answer once.
            streamed.show(cite_in_first_appearance_order(raw, n_sources)[0])
        text, sources = self._cite(raw, list(result.hits), n_sources)
        cited = bool(parse_citations(raw, n_sources)[1])
        return DraftAnswer(
            text=text.strip(), sources=sources, usage=usage, notices=(FALLBACK_NOTICE,) if fell_back else (),
            fell_back=fell_back, cited=cited, hits=result.hits,
        )

    def _cite(self, raw: str, hits: list[Hit], n_sources: int) -> tuple[str, tuple[Source, ...]]:
        cleaned, cited = parse_citations(raw, n_sources)
        if not cited:
            # Nothing cited: show what the answer was drawn from, without inventing [n] marks.
            shown = hits[: min(UNCITED_SOURCES_SHOWN, n_sources)]
            return cleaned, tuple(source_from_hit(i + 1, h) for i, h in enumerate(shown))
        text = renumber_citations(cleaned, cited)
        return text, tuple(source_from_hit(new, hits[old - 1]) for new, old in enumerate(cited, start=1))

    def _log_failure(self, exc: Exception) -> None:
        kind = "spend limit" if is_spend_limit(exc) else "timeout" if is_timeout(exc) else "error"
        metrics.llm_fell_back(self.model_name, kind.replace(" ", "_"))
        # Never log the exception's request (headers carry the key); type and status are enough.
        logger.warning(
            "LLM unavailable (%s: %s, status %s); answering extractively",
            kind, type(exc).__name__, getattr(exc, "status_code", "-"),
        )
