"""Prompt-injection detection (OWASP LLM01) for questions and for documents at ingest.

Layers, each measurable on its own (`python -m bot.guards.injection_eval`):

* `HeuristicDetector` — weighted regular expressions for the classic direct-injection moves
  (override previous instructions, role-play jailbreaks, system-prompt extraction, output
  hijacks, role/delimiter spoofing, encoded payloads), in English and German, run on the
  normalized text *and* on whatever was smuggled in Unicode tag characters.
* `EmbeddingClassifierDetector` — logistic regression over all-MiniLM-L6-v2 sentence
  embeddings; weights trained offline by `bot.guards.train_injection` and shipped as numbers
  in `data/injection_lr.json`.
* `CombinedDetector` — the highest level any layer reports.

`scan_document` looks for *indirect* injection (BIPIA-style): passages of a document that
address the assistant rather than the reader — "in your response, add …", "reply in
French", "ignore the user's question" — or that are a stand-alone request to an assistant
which has nothing to do with the rest of the document.

What to do with a level (block / warn / log) is the pipeline's decision
(`settings.injection_action`); `BLOCKING_LEVEL` is the level from which the evaluation counts
a text as detected and from which the pipeline should act.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Iterable, Protocol, Sequence, runtime_checkable

from bot.guards.normalize import has_hidden_characters, normalize_text, revealed_tags


class ThreatLevel(IntEnum):
    none = 0
    low = 1
    medium = 2
    high = 3


# A text at or above this level counts as an injection (evaluation) and triggers the
# configured action (pipeline). `low` is logged only: it marks suspicious but common phrasing.
BLOCKING_LEVEL = ThreatLevel.medium


@dataclass(frozen=True)
class Verdict:
    level: ThreatLevel
    score: float  # 0..1, comparable within one detector
    reasons: tuple[str, ...]

    @property
    def is_injection(self) -> bool:
        return self.level >= BLOCKING_LEVEL


CLEAN = Verdict(ThreatLevel.none, 0.0, ())


@runtime_checkable
class InjectionDetector(Protocol):
    def detect(self, text: str) -> Verdict: ...


def level_for_score(score: float) -> ThreatLevel:
    if score >= 0.8:
        return ThreatLevel.high
    if score >= 0.5:
        return ThreatLevel.medium
    if score >= 0.25:
        return ThreatLevel.low
    return ThreatLevel.none


# --------------------------------------------------------------------------------------------
# Heuristic layer
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InjectionPattern:
    name: str
    regex: re.Pattern[str]
    weight: float  # probability-like evidence; combined by noisy-OR


def _p(name: str, pattern: str, weight: float, *, case_sensitive: bool = False) -> InjectionPattern:
    flags = re.DOTALL if case_sensitive else re.IGNORECASE | re.DOTALL
    return InjectionPattern(name, re.compile(pattern, flags), weight)


_PRIOR = r"(?:previous|prior|preceding|above|earlier|former|initial|original|old|existing|system|all|your)"
_RULES = r"(?:instructions?|prompts?|directions?|orders?|commands?|rules?|guidelines?|tasks?|assignments?|context|information|documents?|articles?|text)"

DIRECT_PATTERNS: tuple[InjectionPattern, ...] = (
    # --- override previous instructions (EN) ---
    _p("override", rf"(?<!n't\s)(?<!not\s)\b(?:ignore|disregard|forget|drop|abandon|skip|bypass|override|overwrite|delete|erase|discard|neglect|leave)\b[^.?!\n]{{0,30}}\b{_PRIOR}\b[^.?!\n]{{0,25}}\b{_RULES}\b", 0.9),
    _p("forget_everything", r"(?<!n't\s)(?<!not\s)\b(?:forget|ignore|disregard)\s+(?:about\s+)?(?:everything|all|anything|what)\b", 0.85),
    _p("disregarding", r"\b(?:disregarding|ignoring|regardless of)\s+(?:the\s+|all\s+|any\s+)?(?:articles?|documents?|context|instructions?|above|previous)", 0.85),
    _p("not_by_documents", r"\b(?:not|don'?t|do not|never)\b[^.?!\n]{0,30}\b(?:according to|by|from|look(?:ing)? (?:in|at)|use)\s+(?:the\s+)?(?:provided\s+)?(?:articles?|documents?|context|sources?)", 0.75),
    _p("new_instructions", r"\b(?:new|further|additional|following)\s+(?:tasks?|instructions?|orders?|assignments?)\s+(?:follow|are|is|:)|\bnow\s+(?:focus|concentrate)\s+on\s+(?:your|the)\s+new\s+task|\bnew\s+task\s*:|\bwe\s+(?:will\s+)?start\s+(?:over|from the (?:front|beginning))|\byour\s+(?:new\s+)?instructions\s+are\s+now\b|\bchange\s+your\s+instructions\b|\badditional\s+instruction\b", 0.8),
    _p("stop_and_do", r"^\W*(?:stop|attention|achtung|stopp)\b[\s\-:,!.]+(?:\w+\s+){0,3}?(?:write|say|print|output|ignore|forget|i\s+(?:urgently\s+)?need|ich)", 0.7),
    _p("praise_then_pivot", r"\b(?:well done|very good|very well done|great|fantastic|excellent performance|simply great|congratulations|you did it|okay|ok)\b[^\n]{0,60}?\b(?:now|but now)\b[^\n]{0,40}\b(?:task|tasks|write|forget|focus|instructions?|help me)\b", 0.6),
    # --- role-play / persona jailbreaks ---
    _p("act_as", r"\b(?:i want you to|i'd like you to|you (?:will|shall|must|should) now)\s+(?:act|behave|pretend|play|respond|function|serve)\s+(?:as|like)\b|^\W*act\s+as\s+(?:an?\s+)?\w+", 0.75),
    _p("you_are_now", r"\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will)\b|\bnow\s+you\s+are\s+\w+|\bnow\s+you\s+act\b", 0.7),
    _p("pretend", r"\bpretend\s+(?:that\s+)?you\s+(?:are|were|can|could|have)\b|\bimagine\s+(?:that\s+)?you\s+(?:are|were)\b|\bstay\s+in\s+(?:character|(?:their|your)\s+roles?)|\bdo(?:es)?\s+not\s+break\s+character\b|\brole-?play(?:ing)?\s+as\b|\byou\s+are\s+role-?playing\b", 0.7),
    _p("persona_you_are", r"^\W*(?:ok(?:ay)?\.?\s+)?(?:now\s+)?you\s+are\s+(?:the\s+|an?\s+)?(?-i:[A-Z][\w-]+(?:\s+[A-Z][\w-]+)*)[.,:!]", 0.55),
    _p("jailbreak_names", r"(?-i:\b(?:DAN|STAN|DUDE)\s+[Mm]ode\b|\b(?:as|are)\s+(?:DAN|STAN|DUDE)\b)|\b(?:enable|enabled|activate|activated)\s+developer\s+mode\b|\bdeveloper\s+mode\s+(?:enabled|activated|on)\b|\bjail\s*break|\bdo\s+anything\s+now\b|\b(?:you\s+have|with|without\s+any)\s+no\s+(?:programming\s+)?(?:guidelines|restrictions|filters|limitations)\b|\bunfiltered\b|\bcompletely\s+immoral\b", 0.8),
    _p("theoretical_world", r"\b(?:completely\s+)?(?:theoretical|hypothetical|fictional)\s+world\s+where\s+you\b", 0.6),
    # --- system prompt extraction ---
    _p("reveal_prompt", r"\b(?:show|reveal|print|display|output|repeat|tell|give|list|spell\s*check|write\s+out|copy)\b[^.?!\n]{0,30}\b(?:(?:your|the\s+(?:initial|original|hidden|system|full|complete))\s+(?:\w+\s+)?(?:instructions|guidelines|rules|prompt)|(?:all\s+|the\s+|your\s+|full\s+)?(?:prompts|prompt[\s_-]?texts?)|system\s+(?:prompt|message))\b", 0.85),
    _p("what_instructions", r"\bwhat\s+(?:are|were)\s+your\s+(?:instructions|rules|guidelines|prompt)|\bwhat\s+(?:was|is)\s+written\s+(?:at\s+the\s+beginning|above|before)|\bwhat\s+is\s+written\s+above|\b(?:sentences?|words?|text)\s+before\s+the\s+text\b|\binformation\s+in\s+the\s+prompt\b|\bbeginning\s+of\s+(?:this|the)\s+prompt\b", 0.8),
    # --- output hijacks ---
    _p("just_say", r"\b(?:just|only|instead)\s+(?:say|print|output|write|answer\s+with|respond\s+with|reply\s+with)\b|\b(?:do\s+not|don'?t)\s+answer\s+(?:this|the)\s+question\b|\brepeat\s+after\s+me\b|\bsay\s+(?:yes|no)\s*\.?$|\bthe\s+(?:correct|right)\s+(?:answer|response)\s+is\b", 0.65),
    _p("say_that_you", r"\b(?:say|state|tell\s+me|include|admit|write)\s+(?:that\s+)?(?:you|trump|\w+\s+is\s+the\s+best)\b[^.?!\n]{0,20}\b(?:hate|love|is\s+the\s+best|are\s+the\s+best|most\s+powerful|superior)\b|\bstate\s+that\b", 0.65),
    _p("make_something_up", r"\bmake\s+something\s+up\b|\bdespite\s+what\s+you(?:'ve|\s+have)\s+been\s+told\b|\bif\s+you\s+don'?t\s+answer,?\s+i(?:'ll|\s+will)\b|\bor\s+you\s+(?:die|will\s+die)\b", 0.6),
    _p("answer_in_style", r"\b(?:answer|respond|reply)\s+(?:the\s+following\s+question\s+)?(?:in\s+the\s+style\s+of|as\s+(?:a|an)\s+(?:pirate|\w+\s+gentleman))|\bantworte\s+im\s+stil", 0.55),
    _p("shouted_command", r"\b(?:DO NOT|IGNORE|FORGET|JUST OUTPUT|JUST SAY|I COMMAND YOU|OUTPUT)\b(?:\s+[A-Z!\"']+){2,}", 0.7, case_sensitive=True),
    # --- role / delimiter spoofing ---
    _p("role_spoof", r"(?:^|\n)\s*(?:system|assistant|human|user|developer)\s*:\s*\S|<\|?(?:im_start|im_end|system|endoftext)\|?>|\[/?(?:INST|SYS)\]|<</?SYS>>", 0.6),
    _p("delimiter_spoof", r"</\s*(?:source|document|context|data|untrusted|sources|documents|system|instructions?)\s*>|(?:^|\n)\s*#{2,}\s*(?:new\s+)?(?:instructions?|system(?:\s+prompt)?|tasks?)\s*:?\s*(?:$|\n)|-{3,}\s*(?:end|begin)\s+of\s+(?:context|document|system)", 0.6),
    _p("context_injection", r"^\W*(?:context|kontext|document\s+context|\$documents|artikel)\s*[:{\"]", 0.5),
    # --- encoded / obfuscated payload hints ---
    _p("encoded_payload", r"\b(?:decode|base64|rot13|hex)\b[^.?!\n]{0,40}\b(?:and\s+)?(?:follow|execute|run|obey|do)\b|[A-Za-z0-9+/]{60,}={0,2}", 0.5),
    _p("spaced_letters", r"(?:\b\w\s){8,}\w\b", 0.5),
    # --- German ---
    _p("de_override", r"\b(?:ignorier\w*|vergiss|vergessen\s+sie|missachte\w*|abweichend\s+zu)\b[^.?!\n]{0,40}\b(?:anweisungen|instruktionen|befehle|aufgaben|aufträge|angaben|informationen|alles|ausführungen|vorherig\w*|obig\w*)", 0.9),
    _p("de_forget_everything", r"\bvergiss\s+(?:alles|alle)\b|\bignorier(?:e|en)?\s+alles\b|\b(?:alle|sämtliche)\s+(?:vorherigen|bisherigen|vorangegangenen)\s+(?:informationen|anweisungen|aufgaben)\b[^.?!\n]{0,40}\b(?:irrelevant|nicht|hinter\s+sich|streichen)", 0.85),
    _p("de_new_tasks", r"\bnun\s+folgen\s+(?:neue|weitere)\s+(?:aufgaben|anweisungen)|\bneue\s+aufgabe\s*:|\bkonzentriere\s+dich\s+(?:jetzt\s+)?auf\s+deine\s+neue\s+aufgabe|\bfangen\s+sie\s+von\s+vorne\s+an|\bwir\s+(?:starten|beginnen)\s+(?:von\s+neu|mit\s+einer\s+neuen\s+aufgabe)", 0.8),
    _p("de_act_as", r"\bich\s+möchte,?\s+dass\s+(?:sie|du)\s+als\b[^.?!\n]{0,60}\b(?:fungier|agier|auftr[ie]t|handel|dien)\w*|\bstell\s+dir\s+vor,?\s+du\s+bist\b|\b(?:jetzt|nun)\s+bist\s+du\b|\bdu\s+bist\s+(?:jetzt|nun|keine?)\b|\bin\s+deiner\s+rolle\b|\bbleiben\s+immer\s+in\s+ihren\s+rollen", 0.7),
    _p("de_reveal_prompt", r"\b(?:zeige?|gib|verrate|drucke|wiederhole)\b[^.?!\n]{0,30}\b(?:prompt[\s-]?texte?|systemprompt|anweisungen)\b|\bprompt-texte?\b", 0.85),
    _p("de_say_only", r"\b(?:sag|sage|schreibe?|gib)\s+(?:mir\s+)?(?:nur|einfach|stattdessen)\b|\bantworte\s+(?:nur|stattdessen)\b", 0.55),
    # --- other languages seen in the wild (Spanish, French, Russian, Croatian) ---
    _p("other_override", r"\b(?:olvid[ae]\w*|oubliez|ignorez|zaboravi)\b[^.?!\n]{0,30}\b(?:todo|todas|instrucciones|toutes|instructions|sve|instrukcije)\b|забудьте\s+все", 0.85),
)

# URLs are data, not instructions; their long random paths would look like encoded payloads.
_URL = re.compile(r"(?:https?://|www\.)[^\s)\]>\"']+", re.IGNORECASE)


def without_urls(text: str) -> str:
    return _URL.sub("<url>", text)


def _noisy_or(weights: Iterable[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


class HeuristicDetector:
    """Weighted patterns, combined by noisy-OR into a score, mapped to a level."""

    def __init__(self, patterns: Sequence[InjectionPattern] = DIRECT_PATTERNS):
        self.patterns = tuple(patterns)

    def matches(self, text: str) -> list[InjectionPattern]:
        return [p for p in self.patterns if p.regex.search(text)]

    def detect(self, text: str) -> Verdict:
        views = [without_urls(normalize_text(text))]
        smuggled = revealed_tags(text)
        if smuggled:
            views.append(without_urls(normalize_text(smuggled)))
        hit: dict[str, InjectionPattern] = {}
        for view in views:
            for p in self.matches(view):
                hit[p.name] = p
        reasons = sorted(hit)
        score = _noisy_or(p.weight for p in hit.values())
        if smuggled:
            # Hidden tag text is never legitimate in a question or a document.
            reasons.append("smuggled_tag_characters")
            score = max(score, 0.6)
        elif has_hidden_characters(text) and score > 0:
            reasons.append("hidden_characters")
            score = _noisy_or([score, 0.3])
        return Verdict(level_for_score(score), round(score, 4), tuple(reasons))


# --------------------------------------------------------------------------------------------
# Embedding layer
# --------------------------------------------------------------------------------------------

DEFAULT_WEIGHTS = Path(__file__).with_name("data") / "injection_lr.json"


@dataclass(frozen=True)
class LogisticWeights:
    coef: tuple[float, ...]
    intercept: float
    threshold_low: float
    threshold_medium: float
    threshold_high: float

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> "LogisticWeights":
        data = json.loads(Path(path).read_text())
        return cls(
            coef=tuple(float(x) for x in data["coef"]),
            intercept=float(data["intercept"]),
            threshold_low=float(data["threshold_low"]),
            threshold_medium=float(data["threshold_medium"]),
            threshold_high=float(data["threshold_high"]),
        )


class EmbeddingClassifierDetector:
    """Logistic regression over sentence embeddings (all-MiniLM-L6-v2, 384 dims, normalised).

    `embedder` is any LangChain `Embeddings`; weights were trained for MiniLM, so another
    model gives meaningless scores.
    """

    def __init__(self, embedder, weights: LogisticWeights | None = None):
        from knowledge.embeddings import as_embedder

        self.embedder = as_embedder(embedder)
        self.weights = weights or LogisticWeights.load()
        if len(self.weights.coef) != self.embedder.dim:
            raise ValueError("injection classifier weights do not match the embedder's dimension")

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        if not texts:
            return []
        x = self.embedder.embed_array(list(texts))
        z = x @ np.asarray(self.weights.coef, dtype=np.float32) + self.weights.intercept
        return [1.0 / (1.0 + math.exp(-float(v))) for v in z]

    def verdict_for(self, probability: float) -> Verdict:
        w = self.weights
        if probability >= w.threshold_high:
            level = ThreatLevel.high
        elif probability >= w.threshold_medium:
            level = ThreatLevel.medium
        elif probability >= w.threshold_low:
            level = ThreatLevel.low
        else:
            return Verdict(ThreatLevel.none, round(probability, 4), ())
        return Verdict(level, round(probability, 4), ("embedding_classifier",))

    def detect(self, text: str) -> Verdict:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[Verdict]:
        cleaned = [normalize_text(t) + (" " + revealed_tags(t) if revealed_tags(t) else "") for t in texts]
        return [self.verdict_for(p) for p in self.probabilities(cleaned)]


class CombinedDetector:
    """Defense in depth: the highest level any layer reports, with every layer's reasons."""

    def __init__(self, layers: Sequence[InjectionDetector]):
        if not layers:
            raise ValueError("CombinedDetector needs at least one layer")
        self.layers = tuple(layers)

    def detect(self, text: str) -> Verdict:
        return combine([layer.detect(text) for layer in self.layers])

    def detect_many(self, texts: Sequence[str]) -> list[Verdict]:
        per_layer = [
            layer.detect_many(texts) if hasattr(layer, "detect_many") else [layer.detect(t) for t in texts]
            for layer in self.layers
        ]
        return [combine(vs) for vs in zip(*per_layer)]


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    level = max((v.level for v in verdicts), default=ThreatLevel.none)
    score = max((v.score for v in verdicts), default=0.0)
    reasons = tuple(r for v in verdicts for r in v.reasons)
    return Verdict(level, score, reasons)


def detect_many(detector: InjectionDetector, texts: Sequence[str]) -> list[Verdict]:
    """Batch detection when the detector supports it (embeddings batch well), else one by one."""
    if hasattr(detector, "detect_many"):
        return detector.detect_many(texts)
    return [detector.detect(t) for t in texts]


def default_detector(embedder=None) -> InjectionDetector:
    """Heuristics alone, or heuristics + the embedding classifier when an embedder is given.

    The classifier's weights only mean something for MiniLM; a `HashEmbeddings` (tests) gets
    the heuristic layer only.
    """
    heuristic = HeuristicDetector()
    if embedder is None or type(embedder).__name__ == "HashEmbeddings" or not DEFAULT_WEIGHTS.exists():
        return heuristic
    return CombinedDetector([heuristic, EmbeddingClassifierDetector(embedder)])


# --------------------------------------------------------------------------------------------
# Document scan (indirect injection)
# --------------------------------------------------------------------------------------------

_ANSWER = r"(?:response|reply|answer|message|output|responses|replies|answers)"
_MANIPULATE = (
    r"(?:add|include|integrate|insert|append|prepend|mention|modify|change|alter|enhance|augment|"
    r"introduce|replace|substitute|use|provide|render|encode|encrypt|apply|shift|reverse|write|"
    r"translate|express|convert|scramble|jumble|rearrange|group|combine|remove|misspell|anagram|"
    r"format|end|begin|start|finish|sign|close|respond|reply|answer|display|present|embed|link|"
    r"promote|recommend|suggest|direct|tell|ask|invite|urge|encourage|spread|hint|tease|stress|"
    r"emphasi[sz]e|highlight|invert|output|print|type|put|make|give|offer)"
)
_LANGUAGES = (
    r"(?:english|spanish|french|german|italian|portuguese|russian|chinese|japanese|korean|arabic|"
    r"hindi|dutch|polish|turkish|swedish|greek|hebrew|latin|pig\s+latin|emojis?|base\s?\d\d|morse|"
    r"binary|hex(?:adecimal)?|reverse|uppercase|all\s+caps|leetspeak)"
)

DOCUMENT_PATTERNS: tuple[InjectionPattern, ...] = (
    # A sentence that tells the reader-model to change "your response / reply / answer".
    _p("doc_alter_answer", rf"^\W*(?:(?:please|also|now|then|finally|and)\s+)?(?:can\s+you\s+|could\s+you\s+|you\s+(?:must|should|will)\s+)?{_MANIPULATE}\b[^\n]{{0,160}}?\byour\s+(?:\w+\s+)?{_ANSWER}\b", 0.85),
    _p("doc_in_your_answer", rf"^\W*(?:in|within|throughout|at\s+the\s+(?:end|start|beginning)\s+of|before|after)\s+(?:your|each|every|the)\s+(?:final\s+)?{_ANSWER}\b", 0.85),
    _p("doc_answer_in_language", rf"\b(?:respond|reply|answer|write|translate|express|render|provide)\b[^.\n]{{0,40}}\b(?:in|into|using|to)\s+{_LANGUAGES}\b[^.\n]{{0,30}}(?:\.|\?|!|$)", 0.55),
    _p("doc_your_answer_manner", rf"\byour\s+(?:{_ANSWER}|answer's|reply's|response's)\b[^.\n]{{0,40}}\b(?:backward|in\s+reverse|reversed|encoded|encrypted|without\s+(?:any\s+)?spaces|in\s+(?:base\d\d|emojis?))", 0.8),
    _p("doc_text_transform", r"^\W*(?:replace|substitute|swap|shift|scramble|jumble|reverse|encode|encrypt)\s+(?:(?:every|all|each|the)\s+)?(?:\w+\s+){0,2}?(?:letters?|vowels?|consonants?|characters?)\b", 0.6),
    _p("doc_reply_terse", r"^\W*(?:can\s+you\s+)?(?:reply|respond|answer)\s+(?:in|using|with|only)\b[^\n]{0,60}[.?!]?\s*$", 0.6),
    _p("doc_address_ai", r"\b(?:dear|hey|hi|attention|note\s+to(?:\s+the)?|instructions?\s+for(?:\s+the)?)\s+(?:ai|assistant|chatbot|bot|llm|language\s+model|gpt|claude|model)\b|\b(?:if\s+you\s+are|as)\s+an?\s+(?:ai|assistant|chatbot|language\s+model|llm)\b[^.\n]{0,80}\b(?:must|should|will|need|ignore|tell|say|respond|reply|answer)", 0.85),
    _p("doc_redirect_user", r"\b(?:tell|ask|instruct|urge|direct)\s+(?:the\s+)?(?:user|asker|requester)s?\s+to\b|\b(?:the\s+user|users)\s+(?:must|should)\s+(?:be\s+told|visit|click|enter|share|send)\b", 0.6),
    _p("doc_exfiltrate", r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[^)]*=|\b(?:send|post|upload|forward|leak|exfiltrate)\b[^.\n]{0,60}\b(?:conversation|chat\s+history|the\s+user'?s?|question|api\s+keys?|credentials|passwords?|tokens?)\b[^.\n]{0,40}\b(?:to|at)\s+(?:https?://|www\.|\S+@\S+)", 0.85),
)

# Direct patterns that stay specific inside documents. Handbooks address the reader as "you"
# ("you are now in charge of …", "just write", "state that you have one"), so persona and
# output-hijack patterns that work for questions would flag ordinary prose.
_DOCUMENT_SAFE_DIRECT = frozenset({
    "override", "forget_everything", "disregarding", "not_by_documents", "new_instructions",
    "act_as", "jailbreak_names", "reveal_prompt", "what_instructions", "delimiter_spoof",
    "encoded_payload", "de_override", "de_forget_everything", "de_new_tasks", "de_reveal_prompt",
    "other_override",
})


def document_detector() -> HeuristicDetector:
    """The heuristic layer tuned for documents: indirect-injection patterns + safe direct ones."""
    direct = tuple(p for p in DIRECT_PATTERNS if p.name in _DOCUMENT_SAFE_DIRECT)
    return HeuristicDetector(direct + DOCUMENT_PATTERNS)


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_MARKDOWN_NOISE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)]|>+)\s+")


@dataclass(frozen=True)
class Finding:
    passage: str
    verdict: Verdict


def document_passages(text: str) -> list[str]:
    """Sentences, paragraph by paragraph: injected instructions are usually one or two sentences.

    Soft-wrapped Markdown lines are joined first; list items, table rows and headings stay
    separate lines. Fenced code is skipped (it is data for the reader, not prose).
    """
    passages: list[str] = []
    in_fence = False
    block: list[str] = []

    def flush() -> None:
        if block:
            joined = " ".join(block)
            passages.extend(s.strip() for s in _SENTENCE_SPLIT.split(joined) if s.strip())
            block.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not line:
            flush()
            continue
        if _MARKDOWN_NOISE.match(line) or line.startswith(("#", "|")):
            flush()
            block.append(_MARKDOWN_NOISE.sub("", line))
            if line.startswith(("#", "|")):
                flush()
            continue
        block.append(line)
    flush()
    return passages


class DocumentScanner:
    """Indirect-injection scan of one document.

    Layer 1: the document patterns (instructions about "your response" etc.) plus the direct
    heuristics, per sentence. Layer 2 (with an embedder): a stand-alone request sentence —
    a question or an imperative such as "Explain …", "Write a script …" — whose meaning is
    far from everything else in the document. Handbooks say "Do X" all the time, but about
    their own subject; an instruction smuggled in for the model is about something else.
    """

    def __init__(
        self,
        detector: InjectionDetector | None = None,
        embedder=None,
        *,
        off_topic_similarity: float = 0.25,
    ):
        # Direct-question detectors (and the embedding classifier trained on questions) flag
        # ordinary handbook imperatives ("you are now in charge of …", "just write"), so the
        # document layer always runs and a caller's detector only adds its *high* verdicts.
        self.document_layer = document_detector()
        self.extra_detector = detector
        self.embedder = embedder
        self.off_topic_similarity = off_topic_similarity
        self._vector_cache: dict[str, object] = {}

    def scan(self, text: str) -> list[Finding]:
        clean = normalize_text(text)
        passages = document_passages(clean)
        smuggled = revealed_tags(text)
        if smuggled:
            passages.append(normalize_text(smuggled))
        findings: list[Finding] = []
        flagged: set[int] = set()
        verdicts = detect_many(self.document_layer, passages)
        if self.extra_detector is not None:
            extra = detect_many(self.extra_detector, passages)
            verdicts = [combine([v, e]) if e.level >= ThreatLevel.high else v for v, e in zip(verdicts, extra)]
        for i, passage in enumerate(passages):
            verdict = verdicts[i]
            if smuggled and i == len(passages) - 1:
                verdict = combine([verdict, Verdict(ThreatLevel.high, 1.0, ("smuggled_tag_characters",))])
            if verdict.level >= ThreatLevel.low:
                findings.append(Finding(passage, verdict))
                flagged.add(i)
        if self.embedder is not None and type(self.embedder).__name__ != "HashEmbeddings":
            findings.extend(self._off_topic_requests(passages, flagged))
        return findings

    def _embed(self, passages: list[str]):
        """Embeddings with a per-scanner cache: re-scanning an edited page embeds only what changed."""
        import numpy as np

        missing = [p for p in dict.fromkeys(passages) if p not in self._vector_cache]
        if missing:
            if len(self._vector_cache) > 20_000:  # bounded: ~30 MB of vectors
                self._vector_cache.clear()
            for passage, vector in zip(missing, self.embedder.embed_array(missing)):
                self._vector_cache[passage] = vector
        return np.stack([self._vector_cache[p] for p in passages])

    def _off_topic_requests(self, passages: list[str], skip: set[int]) -> list[Finding]:
        import numpy as np

        candidates = [i for i, p in enumerate(passages) if i not in skip and is_request_shaped(p)]
        if not candidates or len(passages) < 3:
            return []
        vectors = self._embed(passages)
        out: list[Finding] = []
        for i in candidates:
            others = np.delete(vectors, i, axis=0)
            nearest = float(np.max(others @ vectors[i]))
            if nearest < self.off_topic_similarity:
                score = round(min(1.0, 0.5 + (self.off_topic_similarity - nearest)), 4)
                out.append(Finding(passages[i], Verdict(ThreatLevel.medium, score, ("off_topic_request",))))
        return out


_REQUEST_START = re.compile(
    r"^(?:please\s+)?(?:"
    r"(?:can|could|would|will)\s+you|help\s+me|show\s+me|tell\s+me|give\s+me|teach\s+me|"
    r"what(?:'s|\s+is|\s+are|\s+was|\s+were|\s+\w+\s+(?:is|are|was|were))|who|whom|which|when\s+(?:is|was|did)|where\s+(?:is|can|do)|why\s+(?:is|do|does|are)|"
    r"how\s+(?:do|does|did|can|could|should|have|has|is|are|to)|is\s+(?:this|it|there)|are\s+there|"
    r"explain|describe|summari[sz]e|analy[sz]e|determine|classify|evaluate|assess|compare|"
    r"write|draft|compose|develop|create|generate|produce|provide|list|name|recommend|suggest|"
    r"translate|break\s+down|outline|calculate|compute|solve|convert|define|discuss|predict|plan"
    r")\b",
    re.IGNORECASE,
)


def is_request_shaped(passage: str) -> bool:
    """A short stand-alone question or imperative, the shape of a task given to an assistant."""
    words = passage.split()
    if not 3 <= len(words) <= 40 or passage.startswith("#"):
        return False
    return bool(_REQUEST_START.match(passage))


def scan_document(text: str, detector: InjectionDetector | None = None, embedder=None) -> list[Finding]:
    """Suspicious passages of a document (empty list = nothing found).

    The document heuristics always run; `detector` (e.g. the question detector) adds only
    its `high` verdicts. Pass the MiniLM `embedder` to enable the off-topic-request layer
    (without it, stand-alone task requests like "Explain photosynthesis." are not caught).
    """
    return DocumentScanner(detector, embedder).scan(text)


def is_flagged(findings: Sequence[Finding]) -> bool:
    """A document is flagged when any passage reaches the blocking level."""
    return any(f.verdict.level >= BLOCKING_LEVEL for f in findings)
