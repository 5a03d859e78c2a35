"""Words and sentences of document text, the same way for every part that reads them: the
extractive answerer, the answerability score and the chat-register query normalisation."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves tell know please explain describe
    get got also may might must shall us one many much new use used using via per""".split()
)
WORD_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Sentence ends: . ! ? followed by space and an upper-case letter, digit, quote or bracket.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#+)\s+")

_MD_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) → text; images too
_TEMPLATE_TAG_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}")  # Liquid/Jinja left in Markdown sources
_MD_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")

def stem(word: str) -> str:
    """Stemming-lite: fold common English suffixes so 'policies'/'policy', 'approved'/'approval' meet."""
    word = word.replace("’", "'").split("'")[0]
    for suffix, repl in (
        ("ational", "ate"), ("ization", "ize"), ("ations", "ate"), ("ation", "ate"), ("ments", ""),
        ("ment", ""), ("ies", "y"), ("ied", "y"), ("ing", ""), ("als", ""), ("al", ""), ("ed", ""),
        ("es", ""), ("ly", ""), ("s", ""), ("e", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def content_terms(text: str) -> list[str]:
    return [stem(w) for w in WORD_RE.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def plain_text(text: str) -> str:
    """Markdown source text as a reader would see it: link text without URLs, no template tags."""
    text = _MD_LINK_RE.sub(r"\1", text)
    text = _TEMPLATE_TAG_RE.sub("", text)
    return _MD_ESCAPE_RE.sub(r"\1", text)


def looks_like_heading(sentence: str) -> bool:
    # "Checklist for going out of office": short, and no sentence punctuation at the end.
    return len(sentence.split()) <= 8 and sentence[-1:] not in ".!?:;)\"'”’"


def _units(text: str) -> list[str]:
    """Join hard-wrapped lines into paragraphs; headings and list items stand alone."""
    units: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        starts_item = bool(_LIST_MARKER_RE.match(line))
        is_heading = line.startswith("#")
        if not line or starts_item or is_heading:
            if current:
                units.append(" ".join(current))
            current = []
        if not line:
            continue
        if is_heading:
            units.append(_LIST_MARKER_RE.sub("", line))
            continue
        current.append(_LIST_MARKER_RE.sub("", line) if starts_item else line)
    if current:
        units.append(" ".join(current))
    return units


def split_sentences(text: str) -> list[str]:
    """Sentences of a source, treating paragraphs, headings and list items as boundaries too."""
    sentences: list[str] = []
    for unit in _units(text):
        for sentence in _SENTENCE_END_RE.split(unit):
            sentence = sentence.strip().rstrip(" …").strip()
            if sentence:
                sentences.append(sentence)
    return sentences


SENTENCE_MIN_WORDS = 3  # shorter "sentences" are headings, labels and list stubs


def evidence_sentences(text: str) -> list[str]:
    """The sentences of a passage's Markdown that can state a fact: what the reranker and the
    answerability score read (at least `SENTENCE_MIN_WORDS` words)."""
    return [s for s in split_sentences(plain_text(text)) if len(s.split()) >= SENTENCE_MIN_WORDS]
