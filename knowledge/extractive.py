"""The offline answerer: picks the source sentences that best answer the question.

A multi-part question ("what is the meal allowance, and how long do I have to claim?") is
answered part by part (knowledge/question_parts.py), and the answer ends with one plain sentence
naming the parts no passage covers. It never refuses on its own: whether the documents answer
at all is decided before it is called, by the answerability gate, the same for every model.

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

from knowledge import answer_types
from knowledge.chain import PromptSource, approx_tokens, parse_prompt
from knowledge.followups import thread_context
from knowledge.question_parts import QuestionPart, SplitQuestion, indirect, split_question
from knowledge.text import content_terms, looks_like_heading, plain_text, split_sentences

MODEL_NAME = "extractive"
INTRO = "According to the documents:"
# Only when there is nothing to quote (no sources, or none with a sentence): whether the
# documents answer at all is the answerability gate's decision, made before this model is called.
ABSTAIN_TEXT = "I couldn't find anything in the documents about this."

MAX_SENTENCES = 3  # for a one-part question
MAX_SENTENCES_PER_PART = 2
MAX_SENTENCES_MULTI = 4  # for all parts together: the answer stays short
MIN_WORDS = 4
MAX_SENTENCE_CHARS = 400
# A part of a multi-part question counts as covered when its best sentence holds at least this
# share of the part's own (IDF-weighted) words — less when the sentence also holds a value of the
# kind the part asks for ("how long" → a duration), itself evidence. Lexical, so it only decides
# which parts the answer names as not covered, never whether to answer.
PART_MIN_COVERAGE = 0.5
PART_MIN_COVERAGE_WITH_VALUE = 0.15  # as little as one topic word beside the value
KIND_BONUS = 0.2  # a sentence holding the asked kind of value beats one that only shares words
OTHER_TERMS_WEIGHT = 0.3  # the rest of the question ("them" in "until when can I use them")
_EMPHASIS = re.compile(r"\*+|(?<!\w)_+|_+(?!\w)")  # "by **31 March**" holds a date


@dataclass(frozen=True)
class Candidate:
    source: PromptSource
    rank: int  # 0 for the top source
    position: int  # sentence index within its source
    text: str
    terms: frozenset[str]


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: float
    coverage: float  # share of the part's own words it holds (or of the question's, for a part without any)
    holds_kind: bool


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


class _Weights:
    """IDF over the candidate sentences: a word in every sentence ("the company") says little.
    Words found nowhere weigh like the rarest found ones: they still count against coverage."""

    def __init__(self, candidates: Sequence[Candidate], words: set[str]):
        n = len(candidates)
        self.idf = {t: math.log(1 + n / max(1, sum(1 for c in candidates if t in c.terms))) for t in words}

    def coverage(self, words: frozenset[str], c: Candidate) -> float:
        total = sum(self.idf[t] for t in words)
        return sum(self.idf[t] for t in words & c.terms) / total if total else 0.0


def _score_part(
    part: QuestionPart, others: frozenset[str], candidates: Sequence[Candidate], weights: _Weights
) -> list[Scored]:
    own, context = (part.terms, others) if part.terms else (others, frozenset())
    scored = []
    for c in candidates:
        coverage = weights.coverage(own, c)
        holds_kind = part.kind is not None and answer_types.holds(_EMPHASIS.sub("", c.text), part.kind)
        score = (
            coverage
            + OTHER_TERMS_WEIGHT * weights.coverage(context, c)
            + (KIND_BONUS if holds_kind else 0.0)
            # Source rank is a mild prior: the retriever's order is evidence too.
            + 0.08 / (1 + c.rank)
            - 0.002 * c.position
        )
        scored.append(Scored(c, score, coverage, holds_kind))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def _pick(scored: Sequence[Scored], words: frozenset[str], limit: int, close: float = 0.6) -> list[Candidate]:
    """The best sentence, then up to `limit - 1` more that score within `close` of it and add a
    word of the question not covered yet (or nearly tie with the best); near-duplicates are skipped."""
    if not scored:
        return []
    best = scored[0].score
    chosen: list[Candidate] = []
    covered: set[str] = set()
    for s in scored:
        c = s.candidate
        if len(chosen) >= limit or s.score < close * best:
            break
        if any(len(c.terms & o.terms) / max(1, len(c.terms | o.terms)) > 0.6 for o in chosen):
            continue
        new = (words & c.terms) - covered
        if chosen and not new and (s.score < 0.9 * best or s.coverage == 0):
            continue
        chosen.append(c)
        covered |= words & c.terms
    return chosen


def _covered(best: Scored, part: QuestionPart) -> bool:
    if not part.terms:  # "until when can I use them": on the question's topic is enough
        return best.coverage > 0
    return best.coverage >= (PART_MIN_COVERAGE_WITH_VALUE if best.holds_kind else PART_MIN_COVERAGE)


@dataclass(frozen=True)
class Extract:
    """What the extractive answer says: sentences in the order shown, and the parts it can't answer."""

    sentences: tuple[Candidate, ...]
    uncovered: tuple[QuestionPart, ...] = ()


def extract(question: str, sources: Sequence[PromptSource], context: str = "") -> Extract:
    """The sentences that answer each part of `question`, and the parts no sentence covers.

    `context` is what a follow-up leans on (the asker's earlier question in the thread,
    `knowledge.followups.thread_context`): its words count like the rest of the question's, never
    as a part to answer.

    Always quotes something when there is a sentence to quote: behind docent's answerability gate
    the passages were already judged to answer the question, so the part-level check below only
    names the parts of a multi-part question that the passages leave out, and a question none of
    whose parts looks covered is answered from its best sentences as a whole.
    """
    candidates = _candidates(sources)
    if not candidates:
        return Extract(())
    split = split_question(question)
    own_words = set(split.context_terms).union(*(p.terms for p in split.parts))
    thread = frozenset(content_terms(context)) - own_words
    weights = _Weights(candidates, own_words | thread)
    if len(split.parts) > 1:
        per_part: list[list[Candidate]] = []
        uncovered: list[QuestionPart] = []
        for part in split.parts:
            scored = _score_part(part, split.other_terms(part) | thread, candidates, weights)
            if part.kind is not None:  # "how long …" is answered by a sentence holding a duration
                scored = [s for s in scored if s.holds_kind]
            if not scored or not _covered(scored[0], part):
                uncovered.append(part)
            else:
                per_part.append(_pick(scored, part.terms, MAX_SENTENCES_PER_PART, close=0.8))
        # Every covered part's best sentence first, then seconds while there is room; in part order.
        picked: list[Candidate] = []
        for round_ in range(MAX_SENTENCES_PER_PART):
            for chosen in per_part:
                if round_ < len(chosen) and chosen[round_] not in picked and len(picked) < MAX_SENTENCES_MULTI:
                    picked.append(chosen[round_])
        if picked:
            first_seen: dict[Candidate, tuple[int, int]] = {}
            for i, chosen in enumerate(per_part):
                for j, c in enumerate(chosen):
                    first_seen.setdefault(c, (i, j))
            return Extract(tuple(sorted(picked, key=first_seen.__getitem__)), tuple(uncovered))
    whole = _make_whole(question, split)
    chosen = _pick(_score_part(whole, split.context_terms | thread, candidates, weights), whole.terms, MAX_SENTENCES)
    return Extract(tuple(sorted(chosen, key=lambda c: (c.rank, c.position))))


def _make_whole(question: str, split: SplitQuestion) -> QuestionPart:
    kinds = {p.kind for p in split.parts}
    terms = frozenset().union(*(p.terms for p in split.parts))
    return QuestionPart(question, terms, kinds.pop() if len(kinds) == 1 else None)


def not_covered_sentence(parts: Sequence[QuestionPart]) -> str:
    """One plain sentence naming the parts the documents don't cover."""
    clauses = [indirect(p.text) for p in parts]
    if all(c is not None for c in clauses):
        named = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " or " + clauses[-1]
        return f"The documents don't say {named}."
    quoted = ", ".join(f"“{p.text}?”" for p in parts)
    return f"The documents don't answer {'this part' if len(parts) == 1 else 'these parts'} of the question: {quoted}"


def compose_answer(question: str, sources: Sequence[PromptSource], context: str = "") -> str:
    found = extract(question, sources, context)
    if not found.sentences:
        return ABSTAIN_TEXT
    text = INTRO + " " + " ".join(_with_citation(c.text, c.source.n) for c in found.sentences)
    if found.uncovered:
        text += " " + not_covered_sentence(found.uncovered)
    return text


def _usage(messages: Sequence[BaseMessage], text: str) -> UsageMetadata:
    inp = sum(approx_tokens(m.content if isinstance(m.content, str) else str(m.content)) for m in messages)
    out = approx_tokens(text)
    return UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=inp + out)


class ExtractiveChatModel(BaseChatModel):
    """A chat model that answers with the sources' own best sentences, each cited [n], and says
    which parts of the question they don't cover. Free, offline."""

    @property
    def _llm_type(self) -> str:
        return MODEL_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": MODEL_NAME}

    def _answer(self, messages: list[BaseMessage]) -> str:
        prompt = parse_prompt(messages)
        # The asker's own earlier questions, else what others said in the thread (the prompt
        # quotes their messages; retrieval already searched with the one docent answered).
        context = thread_context(prompt.question, prompt.earlier) or thread_context(prompt.question, prompt.quoted)
        return compose_answer(prompt.question, prompt.sources, context)

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
