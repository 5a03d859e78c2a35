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
title and headings) —, so a channel's documents never steer another channel's questions. It is
kept in parts: the workspace-wide documents' words, read once for every channel of the
workspace, and each channel's own. A part is read from the store on the first question that
needs it (`ChunkStore.channel_texts`), on a thread of its own: questions wait for it up to
`first_wait_s` (2 s), and after that go uncorrected until it is done. It is read again in the
background (the old one serving meanwhile) once the store has been written since
(`ChunkStore.generation`, at most every `min_rebuild_s`) or, for a store other processes write
(a Qdrant server), after `refresh_s`. A failed read is retried no sooner than `refresh_s` later. Corrections only steer the search and the
score, and are never shown; the question the model reads is the asker's own.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from symspellpy import SymSpell, Verbosity

from knowledge.text import STOPWORDS
from knowledge.text import stem as stem_of
from knowledge.types import Scope

log = logging.getLogger(__name__)

MIN_LENGTH = 5
PARTS = 128  # vocabularies kept, one per channel or workspace-wide part (least recently asked dropped first)
MIN_REBUILD_S = 5.0
FIRST_WAIT_S = 2.0  # how long a part's first questions wait for its words to be read
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


_UNREAD = Vocabulary(Counter(), None, 0.0, -1)  # a part whose first read is still under way: no words yet


def correct_with(vocabularies: Sequence[Vocabulary], text: str, min_length: int = MIN_LENGTH) -> str:
    """`text` with the words `vocabularies` correct replaced (the rules in the module docstring).

    Several vocabularies are read as one — the parts of what a scope may read: a word is known
    if any part has it, and of the words one edit away the one in most chunks across the parts
    wins (the parts hold different chunks, so their counts add); of equals, the first a part
    names (symspellpy's order within a part: one part corrects as symspellpy's top suggestion)."""
    parts = [v for v in vocabularies if v.words]
    if not parts:  # no documents, or a failed first read
        return text
    english = english_words()

    def known(word: str) -> bool:
        return any(word in v.words for v in parts)

    def closest(word: str) -> str | None:
        counts: Counter = Counter()  # in the order the parts' lookups name them (each: most chunks first)
        for v in parts:
            for found in v.index.lookup(word, Verbosity.CLOSEST, max_edit_distance=1):
                counts[found.term] += found.count
        return max(counts, key=counts.__getitem__) if counts else None  # the first of equals

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if any(c.isupper() for c in word[1:]):  # "iTregs", "PtdIns", "GitHub": a name, spelled as meant
            return word
        stem, apostrophe, rest = word.lower().partition("'")
        if (len(stem) < min_length or stem in STOPWORDS or stem in english or known(stem)
                or known(word.lower())):
            return word
        found = closest(stem)
        if found is None or (len(stem) <= min_length and len(found) < len(stem)):
            return word
        if stem_of(found) == stem_of(stem):  # "aptamers" → "aptamer": BM25 stems them alike
            return word
        return found + apostrophe + rest

    return _WORD.sub(fix, text)


class Speller:
    """Corrects questions against the words of what each asker's scope may read in `store`
    (a `ChunkStore`: `channel_texts(workspace, channel)`, `generation`, and its backend's
    `exclusive`).

    Words are kept per part of a scope — one channel's documents, or a workspace's
    workspace-wide ones (`Scope.visible_channels`) — not per scope: every channel of a workspace
    reads the workspace-wide documents, and those are read, and held, once; a channel's first
    question reads only that channel's own documents."""

    def __init__(self, store, *, refresh_s: float = 600.0, min_rebuild_s: float = MIN_REBUILD_S,
                 min_length: int = MIN_LENGTH, parts: int = PARTS,
                 first_wait_s: float = FIRST_WAIT_S):
        self.store = store
        self.refresh_s = refresh_s
        self.min_rebuild_s = min_rebuild_s
        self.min_length = min_length
        self.parts = parts  # vocabularies kept (a scope reads one or two)
        self._vocabularies: OrderedDict[tuple, Vocabulary] = OrderedDict()
        self._refreshing: set[tuple] = set()
        self.first_wait_s = first_wait_s
        self._lock = threading.Lock()
        self._pending: dict[tuple, tuple[threading.Event, float]] = {}  # first reads under way: done, deadline

    def correct(self, scope: Scope, text: str) -> str:
        """`text` with its misspelled words replaced; unchanged when none is, or when the scope
        may read no documents."""
        if not text or not any(len(w) >= self.min_length for w in _WORD.findall(text)):
            return text
        keys = [(scope.workspace, channel) for channel in scope.visible_channels]
        for key in keys:  # parts never read are read side by side
            self._start_first(key)
        parts = [self._vocabulary(key) for key in keys]
        if any(part is _UNREAD for part in parts):  # half the words could correct what the other half has
            return text
        return correct_with(parts, text, self.min_length)

    def warm(self, scope: Scope) -> None:
        """Read now, however long it takes, the words of every part `scope` reads that are not
        read yet (the gauges: every question corrected from the first, whatever the machine's load)."""
        for channel in scope.visible_channels:
            key = (scope.workspace, channel)
            if self._get(key) is None:
                self._read(key, None)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the first reads under way (before closing the store); False if `timeout`
        passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [done for done, _ in self._pending.values()]
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            pending[0].wait(left)

    def _vocabulary(self, key: tuple[str, str]) -> Vocabulary:
        current = self._get(key) or self._first(key)
        if current is _UNREAD:
            return current
        if self._stale(current):
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:  # meanwhile questions are corrected with the words read before
                threading.Thread(target=self._refresh, args=(key, current), daemon=True,
                                 name="docent-spelling").start()
        return current

    def _first(self, key: tuple[str, str]) -> Vocabulary:
        """A part's first read, once however many ask meanwhile, on a thread of its own: the
        askers wait for it until `first_wait_s` after it started (a small workspace's words take
        well under a second), then go uncorrected (`_UNREAD`) until it is done — a part of
        100k chunks takes seconds to read."""
        pending = self._start_first(key)
        if pending is not None:
            done, deadline = pending
            done.wait(max(0.0, deadline - time.monotonic()))
        return self._get(key) or _UNREAD

    def _start_first(self, key: tuple[str, str]) -> tuple[threading.Event, float] | None:
        """The part's first read under way (started now if it wasn't), or None once it is read."""
        with self._lock:
            if key in self._vocabularies:
                return None
            pending = self._pending.get(key)
            if pending is not None:
                return pending
            pending = self._pending[key] = (threading.Event(), time.monotonic() + self.first_wait_s)
        threading.Thread(target=self._first_read, args=(key, pending[0]), daemon=True, name="docent-spelling").start()
        return pending

    def _first_read(self, key: tuple[str, str], done: threading.Event) -> None:
        try:
            self._read(key, None)
        finally:
            with self._lock:
                self._pending.pop(key, None)
            done.set()

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

    def _refresh(self, key: tuple, old: Vocabulary) -> None:
        try:
            self._read(key, old)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _read(self, key: tuple[str, str], old: Vocabulary | None) -> Vocabulary:
        generation = self.store.generation
        workspace, channel = key
        try:
            vocabulary = build_vocabulary(self.store.channel_texts(workspace, channel), generation)
        except Exception:  # a closed or unreachable store: keep what was read, try again in refresh_s
            if getattr(self.store, "closed", False):  # shut down while reading: nothing to tell
                log.debug("the store closed while the words of %s's documents were read", workspace)
            else:
                log.warning("could not read the words of %s's documents; questions go uncorrected meanwhile",
                            workspace, exc_info=True)
            empty = Vocabulary(Counter(), None, 0.0, generation)
            vocabulary = replace(old or empty, built_at=time.monotonic(), generation=generation, failed=True)
        with self._lock:
            newest = self._vocabularies.get(key)
            if newest is None or newest.built_at <= vocabulary.built_at:  # a slower, older read never wins
                self._vocabularies[key] = vocabulary
                self._vocabularies.move_to_end(key)
            while len(self._vocabularies) > self.parts:
                self._vocabularies.popitem(last=False)
            return self._vocabularies[key]
