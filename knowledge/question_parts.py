"""The parts of a multi-part question, and how to name a part in a plain sentence.

"What is the daily meal allowance, and how long do I have to submit the claim?" asks two things;
an answerer that only looks at the question as a whole answers the first and drops the second.
`split_question` cuts a question into the clauses that ask something of their own (at question
marks, ";", "also", and " and " / ", and" before a clause with its own question word) and keeps
the statements around them ("I typed my password into a phishing page.") as shared context.
`indirect` turns a part into the clause of "The documents don't say …" ("how long you have to
submit the claim"), or returns None when the clause can't be rephrased safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.answer_types import asked_kind
from knowledge.text import content_terms

_WH = r"(?:what|which|who|whom|whose|where|when|why|how)"
_AUX = r"(?:do|does|did|can|could|should|will|would|may|might|must|shall|is|are|was|were|have|has)"
_PRONOUN = r"(?:i|you|we|they|it|there|he|she)"
# A clause boundary inside one sentence: ";", "also", or "and"/"plus" right before a clause that
# asks on its own — a question word, or an auxiliary with a pronoun ("and can I …", "and is it …").
# "and have a fever" or "meals and hotels" don't qualify.
_CLAUSE_BREAK = re.compile(
    rf"\s*;\s*|,?\s+(?:and\s+)?also,?\s+"
    rf"|,?\s+(?:and|plus|as well as)\s+(?=(?:(?:until|till|by)\s+)?{_WH}\b|{_AUX}\s+{_PRONOUN}\b)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.?!]+(?:[.?!]+|$)")
_LEADING_FILLER = re.compile(r"^(?:and|also|plus|so|then|but)\b[,\s]*", re.IGNORECASE)
# The question phrase itself is not a topic: "how long" asks for a duration, it isn't about length.
_QUESTION_PHRASE = re.compile(r"\bhow\s+(?:long|soon|quickly|fast|often|frequently|far|much|many)\b", re.IGNORECASE)
_UNTIL_WHEN = re.compile(r"\b(?:until|till|by)\s+when\b|\bhow\s+late\b", re.IGNORECASE)
MIN_PART_WORDS = 3  # a shorter piece ("where", "and when") stays with its neighbour


@dataclass(frozen=True)
class QuestionPart:
    text: str  # as asked, without the trailing "?"
    terms: frozenset[str]  # its own content words (stemmed), the question phrase left out
    kind: str | None  # the kind of value it asks for (knowledge.answer_types), if any


@dataclass(frozen=True)
class SplitQuestion:
    parts: tuple[QuestionPart, ...]
    context_terms: frozenset[str]  # words of the statements around the parts ("I typed my password …")

    def other_terms(self, part: QuestionPart) -> frozenset[str]:
        """The question's words outside `part`: what "them" in "until when can I use them" refers to."""
        others = set(self.context_terms)
        for p in self.parts:
            if p is not part:
                others |= p.terms
        return frozenset(others - part.terms)


def part_terms(text: str) -> frozenset[str]:
    return frozenset(content_terms(_QUESTION_PHRASE.sub(" ", text)))


def part_kind(text: str) -> str | None:
    return asked_kind(text) or ("date" if _UNTIL_WHEN.search(text) else None)


def _make_part(text: str) -> QuestionPart:
    text = text.strip().rstrip("?.!").strip()
    return QuestionPart(text, part_terms(text), part_kind(text))


def _clauses(sentence: str) -> list[str]:
    pieces = [_LEADING_FILLER.sub("", p).strip(" ,") for p in _CLAUSE_BREAK.split(sentence)]
    merged: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if merged and (len(piece.split()) < MIN_PART_WORDS or len(merged[-1].split()) < MIN_PART_WORDS):
            merged[-1] = f"{merged[-1]} and {piece}"
        else:
            merged.append(piece)
    return merged


def split_question(question: str) -> SplitQuestion:
    """The parts a question asks, and the words of its statements (shared by every part).

    Sentences ending in "?" are asked; the others are context — unless nothing ends in "?"
    ("Tell me the meal allowance and how long I have to claim"), then every sentence is asked.
    """
    sentences = [s.strip() for s in _SENTENCE.findall(" ".join(question.split())) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")] or sentences
    context = [s for s in sentences if s not in asked]
    parts = [_make_part(clause) for sentence in asked for clause in _clauses(sentence)]
    parts = [p for p in parts if p.text] or [_make_part(question)]
    terms = frozenset(t for s in context for t in content_terms(s))
    return SplitQuestion(tuple(parts), terms)


# --- naming a part in "The documents don't say …" -----------------------------------------------

_FIRST_PERSON = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
                 "i'm": "you're", "i've": "you've", "i'll": "you'll", "i'd": "you'd", "am": "are"}
_DETERMINER = r"(?:the|a|an|your|our|this|that|these|those|their|its|any)"
_LEAD = r"(?:(?:until|till|by|from|to|for|in|on|at|with|during)\s+)?"
# wh-phrase, auxiliary, pronoun subject: "how long | do | you | have to submit the claim"
_WH_AUX_SUBJECT = re.compile(
    rf"^(?P<wh>{_LEAD}{_WH}(?:\s+(?!{_AUX}\b)[\w'-]+){{0,4}}?)\s+(?P<aux>{_AUX})\s+(?P<subj>{_PRONOUN})\b(?P<rest>.*)$",
    re.IGNORECASE,
)
# wh-phrase, copula, noun phrase: "what | is | the daily meal allowance"
_WH_COPULA_NP = re.compile(
    rf"^(?P<wh>{_LEAD}{_WH}(?:\s+(?!{_AUX}\b)[\w'-]+){{0,4}}?)\s+(?P<aux>is|are|was|were)\s+(?P<np>{_DETERMINER}\b.+)$",
    re.IGNORECASE,
)
# yes/no: "can | you | bring your dog"
_AUX_SUBJECT = re.compile(rf"^(?P<aux>{_AUX})\s+(?P<subj>{_PRONOUN})\b(?P<rest>.*)$", re.IGNORECASE)
# Already in embedded order: no auxiliary before a subject after the wh-phrase ("who approves
# flights", "how long you have"), or a copula before something that isn't a noun phrase ("what is
# required", "who is responsible").
_WH_SUBJECT = re.compile(
    rf"^{_LEAD}{_WH}\b(?!(?:\s+(?!{_PRONOUN}\b)[\w'-]+){{0,4}}?\s+(?!is\b|are\b|was\b|were\b){_AUX}\b)",
    re.IGNORECASE,
)


def _second_person(text: str) -> str:
    return re.sub(r"\b(?:i'm|i've|i'll|i'd|i|me|my|mine|myself|am)\b",
                  lambda m: _FIRST_PERSON[m.group(0).lower()], text, flags=re.IGNORECASE)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def indirect(part: str) -> str | None:
    """The part as an embedded clause, in the second person: "how long do I have to submit the
    claim" → "how long you have to submit the claim", "can I bring my dog" → "whether you can
    bring your dog". None when it can't be rephrased without risking bad grammar
    ("how long does the claim take"): the caller then quotes the part as asked."""
    text = part.strip().rstrip("?").strip()
    lead = ""
    if "," in text and not re.match(rf"{_LEAD}{_WH}\b|{_AUX}\b", text, re.IGNORECASE):
        # "On a domestic trip, what is the allowance" → rephrase the question, then the setting.
        lead, text = (s.strip() for s in text.split(",", 1))
    text = _second_person(_lower_first(text))
    clause: str | None = None
    if m := _WH_AUX_SUBJECT.match(text):
        aux = m["aux"].lower()
        if aux == "do":
            clause = f"{m['wh']} {m['subj']}{m['rest']}"
        elif aux not in ("does", "did"):  # those would need the verb changed too
            clause = f"{m['wh']} {m['subj']} {aux}{m['rest']}"
    elif m := _WH_COPULA_NP.match(text):
        clause = f"{m['wh']} {m['np']} {m['aux']}"
    elif m := _AUX_SUBJECT.match(text):
        aux = m["aux"].lower()
        if aux == "do":
            clause = f"whether {m['subj']}{m['rest']}"
        elif aux not in ("does", "did"):
            clause = f"whether {m['subj']} {aux}{m['rest']}"
    elif _WH_SUBJECT.match(text):
        clause = text  # the wh-word is the subject: "who approves flights", "what is required"
    if clause is None:
        return None
    clause = " ".join(clause.split())
    return f"{clause} {_second_person(_lower_first(lead))}" if lead else clause
