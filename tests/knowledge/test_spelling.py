"""Spelling correction against the asker's workspace: misspelled words become the documents'
words, real words and short ones are left as asked, one workspace's words never correct
another's questions, and what this process uploads is picked up."""

from __future__ import annotations

import time

import pytest

from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.retriever import HybridRetriever
from knowledge.spelling import Speller, english_words
from knowledge.types import Scope
from tests.knowledge.conftest import make_chunks, vectors

SCOPE = Scope("T1", "C1")
POLICY = "Rotate the passphrase often: every ninety days, through the identity portal."


@pytest.fixture
def store(tmp_path):
    s = EdgeChunkStore(tmp_path / "edge")
    chunks = make_chunks(SCOPE, "security.md", [POLICY]) + make_chunks(
        SCOPE, "filler.md", [f"Office plants number {i} are watered on Fridays by facilities." for i in range(12)])
    s.add(chunks, vectors(chunks))
    other = make_chunks(Scope("T2", "C1"), "kube.md", ["The kubernetes clusters are upgraded quarterly."])
    s.add(other, vectors(other))
    yield s
    s.close()


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_misspelled_words_become_the_documents_words(store):
    speller = Speller(store)
    assert speller.correct("T1", "how ofetn do I rotaet my passphrse") == "how often do I rotate my passphrase"
    assert speller.correct("T1", "Passphrse prtl?") == "passphrase prtl?"  # "prtl": 4 letters, kept
    # Words of the documents and words of English stay as asked, whatever the case.
    assert speller.correct("T1", "Passphrase rules for the Denver office") == "Passphrase rules for the Denver office"
    assert "denver" in english_words() and "denver" not in " ".join(store.workspace_texts("T1")).lower()


def test_a_word_two_edits_away_is_corrected_only_when_long(store):
    speller = Speller(store)
    assert speller.correct("T1", "the idnetity") == "the identity"  # 8 letters: two edits away
    assert speller.correct("T1", "every ninty-nine days") == "every ninety-nine days"  # one edit
    assert speller.correct("T1", "plnts watrd") == "plants watrd"  # "watrd" is two edits from "watered"


def test_one_workspaces_words_never_correct_anothers_question(store):
    speller = Speller(store)
    assert speller.correct("T1", "when are the kubernetis clusters upgraded") == "when are the kubernetis clusters upgraded"
    assert speller.correct("T2", "when are the kubernetis clusters upgraded") == "when are the kubernetes clusters upgraded"
    assert speller.correct("T3", "kubernetis") == "kubernetis"  # a workspace without documents


def test_an_upload_by_this_process_is_picked_up(store):
    speller = Speller(store, refresh_s=3600)
    assert speller.correct("T1", "the zeppelin hangar") == "the zeppelin hangar"
    assert speller.correct("T1", "the zepelin hangar") == "the zepelin hangar"  # nothing close yet
    added = make_chunks(SCOPE, "fleet.md", ["The zeppelin fleet is stored in hangar nine."])
    store.add(added, vectors(added))
    # The words read before still answer while the new ones are read in the background.
    assert _eventually(lambda: speller.correct("T1", "the zepelin hangar") == "the zeppelin hangar")


def test_after_refresh_s_words_written_elsewhere_are_read_again(store):
    speller = Speller(store, refresh_s=0.05)
    assert speller.correct("T1", "the blimpz") == "the blimpz"
    seen = store.generation
    added = make_chunks(SCOPE, "airships.md", ["Every blimps inspection is logged."])
    store.add(added, vectors(added))
    store.generation = seen  # as if another process had written: this one didn't count it
    time.sleep(0.06)
    assert _eventually(lambda: speller.correct("T1", "the blimpz") == "the blimps")


def test_only_live_chunks_lend_their_words(store):
    staged = make_chunks(SCOPE, "draft.md", ["The quarterly hackathon happens offsite."])
    store.stage(staged[0].doc_id, store.next_version(staged[0].doc_id), staged, vectors(staged))
    assert "hackathon" not in " ".join(store.workspace_texts("T1")).lower()
    assert Speller(store).correct("T1", "when is the hackaton") == "when is the hackaton"


def test_the_retriever_searches_the_corrected_words_and_remembers_the_asked_ones(store):
    embedder = HashEmbeddings()
    plain = HybridRetriever(store=store, embedder=embedder, scope=SCOPE)
    corrected = HybridRetriever(store=store, embedder=embedder, scope=SCOPE, speller=Speller(store))
    asked = "how ofetn must the passphrse be rotatte"
    assert corrected.search_text(asked) == "how often must the passphrase be rotate"
    assert plain.search_text(asked) == asked
    hits = corrected.search(asked)
    assert hits[0].chunk.text == POLICY and hits[0].sparse_score  # BM25 matched its words
    assert all(h.sparse_score is None for h in plain.search(asked))  # as asked, BM25 matches nothing
    # The gate reads the store's order for the question as it was asked.
    assert [h.chunk.chunk_index for h in corrected.gate_hits(asked, [])] == [h.chunk.chunk_index for h in hits]
