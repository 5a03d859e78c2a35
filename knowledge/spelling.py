"""A question's misspelled words, corrected to words of the documents the asker may read, before
retrieval and the answerability score read it.

Chat questions carry typos ("passwrd", "ofetn") that BM25 can't match, and that make the
answerability score's lexical coverage read a fact the passages state as missing. Measured on the
dev files with one edit in half of their content words of five letters or more (eval/README.md):
pooled recall@5 fell from 0.975 to 0.915 and false abstention rose from 0.05 to 0.23; with this
correction they were 0.98 and 0.08.

A word is corrected only when all of these hold:
- it has at least `MIN_LENGTH` letters (before an apostrophe: "hire's" is "hire"; shorter
  words are mostly abbreviations: "appt", "mgr");
- it is in neither the documents the asker may read nor a general English word list
  (symspellpy's frequency dictionary): a real word the documents lack ("denver", "payday") is
  left alone, its absence is what tells the score the documents don't answer;
- it is all lower case but perhaps its first letter ("iTregs", "PtdIns", "GitHub" are names);
- a word of those documents is one edit away (Damerau–Levenshtein, by symspellpy; the one in
  most chunks wins) — and, for a word of five letters, not shorter than it ("sched" is not
  "shed"), nor only another form of the same word ("aptamers", "aptamer": BM25 stems both alike). Two edits were tried and turned names into words: "expensify" → "expensive",
  "precheck" → "paycheck", "coursera" → "course".

The vocabulary is the asker's scope's — the same live chunks the search may return (their text,
title and headings) —, so a channel's documents never steer another channel's questions. It is read
from the store on a scope's first question; read again in the background (the old one serving
meanwhile) once the store has been written since (`ChunkStore.generation`, at most every
`min_rebuild_s`) or, for a store other processes write (a Qdrant server), after `refresh_s`. A
failed read is retried no sooner than `refresh_s` later. Corrections only steer the search and the
score, and are never shown; the question the model reads is the asker's own.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from symspellpy import SymSpell, Verbosity

from knowledge.text import STOPWORDS
from knowledge.text import stem as stem_of
from knowledge.types import Scope

log = logging.getLogger(__name__)

MIN_LENGTH = 5
SCOPES = 64  # vocabularies kept (least recently asked dropped first)
MIN_REBUILD_S = 5.0
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The words of symspellpy's English frequency dictionary (~83k, lower case)."""
    import symspellpy

    path = Path(symspellpy.__file__).with_name("frequency_dictionary_en_82_765.txt")
    with path.open(encoding="utf-8") as f:
        return frozenset(line.split(maxsplit=1)[0] for line in f if line.strip())


@dataclass(frozen=True)
class Vocabulary:
    words: Counter  # word → chunks it appears in
    index: SymSpell | None
    built_at: float  # time.monotonic() of the read
    generation: int  # the store's write count when it was read
    failed: bool = False  # the read failed: these are the words read before it, if any


def build_vocabulary(texts: Iterable[str], generation: int = 0) -> Vocabulary:
    counts: Counter = Counter()
    for text in texts:
        counts.update({w.lower() for w in _WORD.findall(text)})
    index = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
    for word in sorted(counts):  # in a fixed order: equally close, equally frequent words tie the same way
        if len(word) >= 3:
            index.create_dictionary_entry(word, counts[word])
    return Vocabulary(counts, index, time.monotonic(), generation)


def correct_with(vocabulary: Vocabulary, text: str, min_length: int = MIN_LENGTH) -> str:
    """`text` with the words `vocabulary` corrects replaced (the rules in the module docstring)."""
    if not vocabulary.words:  # no documents, or a failed first read
        return text
    english = english_words()

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if any(c.isupper() for c in word[1:]):  # "iTregs", "PtdIns", "GitHub": a name, spelled as meant
            return word
        stem, apostrophe, rest = word.lower().partition("'")
        if (len(stem) < min_length or stem in STOPWORDS or stem in english or stem in vocabulary.words
                or word.lower() in vocabulary.words):
            return word
        found = vocabulary.index.lookup(stem, Verbosity.TOP, max_edit_distance=1)
        if not found or (len(stem) <= min_length and len(found[0].term) < len(stem)):
            return word
        if stem_of(found[0].term) == stem_of(stem):  # "aptamers" → "aptamer": BM25 stems them alike
            return word
        return found[0].term + apostrophe + rest

    return _WORD.sub(fix, text)


def _scope_key(scope: Scope) -> tuple[str, tuple[str, ...]]:
    return scope.workspace, tuple(sorted(scope.visible_channels))


class Speller:
    """Corrects questions against the words of what each asker's scope may read in `store`
    (a `ChunkStore`: `scope_texts(scope)`, `generation`, and its backend's `exclusive`)."""

    def __init__(self, store, *, refresh_s: float = 600.0, min_rebuild_s: float = MIN_REBUILD_S,
                 min_length: int = MIN_LENGTH, scopes: int = SCOPES):
        self.store = store
        self.refresh_s = refresh_s
        self.min_rebuild_s = min_rebuild_s
        self.min_length = min_length
        self.scopes = scopes
        self._vocabularies: OrderedDict[tuple, Vocabulary] = OrderedDict()
        self._refreshing: set[tuple] = set()
        self._lock = threading.Lock()
        self._first_read = threading.Lock()  # one scope's first read at a time, each read once

    def correct(self, scope: Scope, text: str) -> str:
        """`text` with its misspelled words replaced; unchanged when none is, or when the scope
        may read no documents."""
        if not text or not any(len(w) >= self.min_length for w in _WORD.findall(text)):
            return text
        return correct_with(self._vocabulary(scope), text, self.min_length)

    def _vocabulary(self, scope: Scope) -> Vocabulary:
        key = _scope_key(scope)
        current = self._get(key)
        if current is None:  # this scope's first question reads its words now
            with self._first_read:
                current = self._get(key) or self._read(scope, key, None)
            return current
        if self._stale(current):
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:  # meanwhile questions are corrected with the words read before
                threading.Thread(target=self._refresh, args=(scope, key, current), daemon=True,
                                 name="docent-spelling").start()
        return current

    def _get(self, key: tuple) -> Vocabulary | None:
        with self._lock:
            found = self._vocabularies.get(key)
            if found is not None:
                self._vocabularies.move_to_end(key)
            return found

    def _stale(self, vocabulary: Vocabulary) -> bool:
        age = time.monotonic() - vocabulary.built_at
        if vocabulary.failed:
            return age >= self.refresh_s
        if age < self.min_rebuild_s:
            return False
        if vocabulary.generation != self.store.generation:
            return True
        # A store only this process writes (Qdrant Edge) changes only through `generation`.
        return not getattr(self.store.backend, "exclusive", False) and age >= self.refresh_s

    def _refresh(self, scope: Scope, key: tuple, old: Vocabulary) -> None:
        try:
            self._read(scope, key, old)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _read(self, scope: Scope, key: tuple, old: Vocabulary | None) -> Vocabulary:
        generation = self.store.generation
        try:
            vocabulary = build_vocabulary(self.store.scope_texts(scope), generation)
        except Exception:  # a closed or unreachable store: keep what was read, try again in refresh_s
            log.warning("could not read the words of %s's documents; questions go uncorrected meanwhile",
                        scope.workspace, exc_info=True)
            empty = Vocabulary(Counter(), None, 0.0, generation)
            vocabulary = replace(old or empty, built_at=time.monotonic(), generation=generation, failed=True)
        with self._lock:
            newest = self._vocabularies.get(key)
            if newest is None or newest.built_at <= vocabulary.built_at:  # a slower, older read never wins
                self._vocabularies[key] = vocabulary
                self._vocabularies.move_to_end(key)
            while len(self._vocabularies) > self.scopes:
                self._vocabularies.popitem(last=False)
            return self._vocabularies[key]
