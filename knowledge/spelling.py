"""A question's misspelled words, corrected to words of the asker's documents before retrieval
and the answerability score read it.

Chat questions carry typos ("passwrd", "ofetn") that BM25 can't match, and that make the
answerability score's lexical coverage read a fact the passages state as missing. Measured on the
dev files with one edit in half of their content words of five letters or more (eval/README.md):
handbook-dev recall@5 fell from 0.973 to 0.872 and false abstention rose from 0.04 to 0.27;
with this correction they were 0.971 and 0.06.

A word is corrected only when all of these hold:
- it has at least `MIN_LENGTH` letters (shorter ones are mostly abbreviations: "appt", "mgr");
- it is in neither the workspace's documents nor a general English word list (symspellpy's
  frequency dictionary) — so a real word the documents lack ("denver", "payday") is left alone:
  its absence is what tells the score the documents don't answer;
- a word of the documents lies within one edit of it (two from eight letters up; Damerau–
  Levenshtein, by symspellpy). The closest wins, then the one in most chunks.

The vocabulary is per workspace: the words of its live chunks, read from the store on first use
and read again in the background once this process has written to the store or `refresh_s` has
passed (another process's uploads). A correction only steers the search toward words of the
asker's own workspace and is never shown; the question the model reads is the asker's own.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from symspellpy import SymSpell, Verbosity

from knowledge.text import STOPWORDS

log = logging.getLogger(__name__)

MIN_LENGTH = 5
LONG_WORD = 8  # from this length on, two edits away
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The words of symspellpy's English frequency dictionary (~83k, lower case)."""
    import symspellpy

    path = Path(symspellpy.__file__).with_name("frequency_dictionary_en_82_765.txt")
    with path.open(encoding="utf-8") as f:
        return frozenset(line.split(maxsplit=1)[0] for line in f if line.strip())


def words_of(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


@dataclass
class _Vocabulary:
    words: Counter  # word → chunks it appears in
    index: SymSpell
    built_at: float  # time.monotonic()
    generation: int  # the store's write count it was read at


def build_vocabulary(texts, generation: int = 0) -> _Vocabulary:
    counts: Counter = Counter()
    for text in texts:
        counts.update(words_of(text))
    index = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    for word in sorted(counts):  # in a fixed order: equally close, equally frequent words tie the same way
        if len(word) >= 3:
            index.create_dictionary_entry(word, counts[word])
    return _Vocabulary(counts, index, time.monotonic(), generation)


class Speller:
    """Corrects questions against the vocabulary of one workspace's documents in `store`
    (a `ChunkStore`: `workspace_texts(workspace)` and `generation`)."""

    def __init__(self, store, *, refresh_s: float = 600.0, min_length: int = MIN_LENGTH):
        self.store = store
        self.refresh_s = refresh_s
        self.min_length = min_length
        self._vocabularies: dict[str, _Vocabulary] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def correct(self, workspace: str, text: str) -> str:
        """`text` with its misspelled words replaced (see the module docstring); unchanged when
        nothing needs correcting or the workspace holds no documents."""
        if not text or not any(len(w) >= self.min_length for w in _WORD.findall(text)):
            return text
        vocabulary = self._vocabulary(workspace)
        if vocabulary is None or not vocabulary.words:
            return text
        english = english_words()

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lower = word.lower()
            if len(lower) < self.min_length or lower in STOPWORDS or lower in vocabulary.words or lower in english:
                return word
            found = vocabulary.index.lookup(lower, Verbosity.TOP, max_edit_distance=2 if len(lower) >= LONG_WORD else 1)
            return found[0].term if found else word

        return _WORD.sub(fix, text)

    def _vocabulary(self, workspace: str) -> _Vocabulary | None:
        with self._lock:
            current = self._vocabularies.get(workspace)
        if current is None:  # the first question in this workspace reads its words now
            return self._read(workspace)
        stale = (current.generation != self.store.generation
                 or time.monotonic() - current.built_at >= self.refresh_s)
        if stale:
            with self._lock:
                start = workspace not in self._refreshing
                self._refreshing.add(workspace)
            if start:  # meanwhile questions are corrected with the words read before
                threading.Thread(target=self._read, args=(workspace,), daemon=True,
                                 name=f"docent-spelling-{workspace}").start()
        return current

    def _read(self, workspace: str) -> _Vocabulary | None:
        try:
            generation = self.store.generation
            vocabulary = build_vocabulary(self.store.workspace_texts(workspace), generation)
        except Exception:  # a closed or unreachable store: questions go uncorrected
            log.warning("could not read the vocabulary of workspace %s", workspace, exc_info=True)
            return None
        finally:
            with self._lock:
                self._refreshing.discard(workspace)
        with self._lock:
            self._vocabularies[workspace] = vocabulary
        return vocabulary
