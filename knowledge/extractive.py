"""The offline answerer: picks the source sentences that best answer the question.

Used when no ANTHROPIC_API_KEY is set and as the fallback when Claude is unavailable. It is a
real LangChain chat model, so it drops into the same chain (invoke and stream) as ChatAnthropic.
It reads the question and sources from the prompt `knowledge.chain.build_messages` wrote.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from knowledge.chain import PromptSource, approx_tokens, parse_prompt
from knowledge.text import content_terms, looks_like_heading, plain_text, split_sentences

MODEL_NAME = "extractive"
INTRO = "According to the documents:"
ABSTAIN_TEXT = "The documents don't seem to answer this question."

MAX_SENTENCES = 3
MIN_COVERAGE = 0.25  # share of the question's (IDF-weighted) content words a sentence must cover
# Behind docent's relevance gate the documents were already judged on topic, so a sentence needs
# less word overlap to be worth quoting (paraphrased questions share few words with the answer).
# Measured on eval/handbook_qa.jsonl: false abstentions 23% at 0.25, 3% at 0.15.
GATED_MIN_COVERAGE = 0.15
MIN_WORDS = 4
MAX_SENTENCE_CHARS = 400

@dataclass(frozen=True)
class Candidate:
    source: PromptSource
    rank: int  # 0 for the top source
    position: int  # sentence index within its source
    text: str
    terms: frozenset[str]


def _candidates(sources: Sequence[PromptSource]) -> list[Candidate]:
    out = []
    for rank, source in enumerate(sources):
        for position, sentence in enumerate(split_sentences(plain_text(source.text))):
            if len(sentence.split()) < MIN_WORDS or looks_like_heading(sentence):
                continue
            if len(sentence) > MAX_SENTENCE_CHARS:
                sentence = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"
            out.append(Candidate(source, rank, position, sentence, frozenset(content_terms(sentence))))
    return out


def _with_citation(sentence: str, n: int) -> str:
    """'Leave is 25 days.' → 'Leave is 25 days [1].'"""
    if sentence[-1:] in ".!?:;" and not sentence.endswith("…"):
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


def select_sentences(
    question: str, sources: Sequence[PromptSource], min_coverage: float = MIN_COVERAGE
) -> list[Candidate]:
    """The few sentences that best cover the question, in reading order (source rank, position)."""
    q_terms = set(content_terms(question))
    candidates = _candidates(sources)
    if not q_terms or not candidates:
        return []
    # IDF over sentences: a word in every sentence ("the company") says little about relevance.
    n = len(candidates)
    df = {t: sum(1 for c in candidates if t in c.terms) for t in q_terms}
    # Words found nowhere weigh like the rarest found ones: they still count against coverage.
    idf = {t: math.log(1 + n / max(df[t], 1)) for t in q_terms}
    total = sum(idf.values())

    def coverage(c: Candidate) -> float:
        return sum(idf[t] for t in q_terms & c.terms) / total

    scored = []
    for c in candidates:
        cov = coverage(c)
        if cov < min_coverage:
            continue
        # Source rank is a mild prior: the retriever's order is evidence too.
        scored.append((cov + 0.08 / (1 + c.rank) - 0.002 * c.position, c))
    if not scored:
        return []
    scored.sort(key=lambda sc: sc[0], reverse=True)
    best = scored[0][0]
    chosen: list[Candidate] = []
    covered: set[str] = set()
    for score, c in scored:
        if len(chosen) >= MAX_SENTENCES or score < 0.6 * best:
            break
        # Skip near-duplicates and sentences that add no question word not already covered,
        # unless it is one of the two strongest.
        if any(len(c.terms & o.terms) / max(1, len(c.terms | o.terms)) > 0.6 for o in chosen):
            continue
        new = (q_terms & c.terms) - covered
        if chosen and not new and score < 0.9 * best:
            continue
        chosen.append(c)
        covered |= q_terms & c.terms
    chosen.sort(key=lambda c: (c.rank, c.position))
    return chosen


def compose_answer(question: str, sources: Sequence[PromptSource], min_coverage: float = MIN_COVERAGE) -> str:
    if not sources:
        return "I couldn't find anything in the documents about this."
    chosen = select_sentences(question, sources, min_coverage)
    if not chosen:
        return ABSTAIN_TEXT
    return INTRO + " " + " ".join(_with_citation(c.text, c.source.n) for c in chosen)


def _usage(messages: Sequence[BaseMessage], text: str) -> UsageMetadata:
    inp = sum(approx_tokens(m.content if isinstance(m.content, str) else str(m.content)) for m in messages)
    out = approx_tokens(text)
    return UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=inp + out)


class ExtractiveChatModel(BaseChatModel):
    """A chat model that answers with the sources' own best sentences, each cited [n]. Free, offline."""

    min_coverage: float = MIN_COVERAGE

    @property
    def _llm_type(self) -> str:
        return MODEL_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": MODEL_NAME}

    def _answer(self, messages: list[BaseMessage]) -> str:
        prompt = parse_prompt(messages)
        return compose_answer(prompt.question, prompt.sources, self.min_coverage)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._answer(messages)
        message = AIMessage(
            content=text, usage_metadata=_usage(messages, text), response_metadata={"model_name": MODEL_NAME}
        )
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": MODEL_NAME})

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._answer(messages)
        # Word-sized pieces, so a streaming UI behaves as it would with Claude.
        for piece in re.findall(r"\S+\s*|\s+", text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=_usage(messages, text), response_metadata={"model_name": MODEL_NAME}
            )
        )
