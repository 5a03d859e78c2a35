"""Spelling correction against what the asker may read: misspelled words become the documents'
words; real words, names two edits from a document word, short words and abbreviations stay as
asked; a channel's or workspace's words never correct another's questions; what this process
writes is read again, a failed read is not retried per question."""

from __future__ import annotations

import threading
import time

import pytest

from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings
from knowledge.retriever import HybridRetriever
from knowledge.spelling import Speller, english_words
from knowledge.types import WORKSPACE_WIDE, Scope
from tests.knowledge.conftest import make_chunks, vectors

SCOPE = Scope("T1", "C1")
POLICY = "Rotate the passphrase often: every ninety days, through the identity portal. Use the expensive apps."


def _add(store, scope, name, texts):
    chunks = make_chunks(scope, name, texts)
    store.add(chunks, vectors(chunks))
    return chunks


@pytest.fixture
def store(tmp_path):
    s = EdgeChunkStore(tmp_path / "edge")
    _add(s, SCOPE, "security.md", [POLICY])
    _add(s, SCOPE, "filler.md", [f"Office plants number {i} are watered on Fridays by facilities." for i in range(12)])
    _add(s, Scope("T1", "C2"), "secret.md", ["The initech acquisition closes in spring."])
    _add(s, Scope("T2", "C1"), "kube.md", ["The kubernetes clusters are upgraded quarterly."])
    yield s
    s.close()


def _words_of(store, scope):
    """Everything `scope` may read, as one lower-case string."""
    return " ".join(t for c in scope.visible_channels for t in store.channel_texts(scope.workspace, c)).lower()


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_misspelled_words_become_the_documents_words(store):
    speller = Speller(store)
    assert speller.correct(SCOPE, "how ofetn do I rotaet my passphrse") == "how often do I rotate my passphrase"
    assert speller.correct(SCOPE, "Passphrse's prtl?") == "passphrase's prtl?"  # the stem corrected; "prtl": 4 letters
    assert speller.correct(SCOPE, "the idenity prtal") == "the identity portal"
    # Words of the documents and words of English stay as asked, whatever the case.
    assert speller.correct(SCOPE, "Passphrase rules for the Denver office") == "Passphrase rules for the Denver office"
    assert "denver" in english_words() and "denver" not in _words_of(store, SCOPE)


def test_names_two_edits_away_short_words_and_abbreviations_stay_as_asked(store):
    speller = Speller(store)
    assert speller.correct(SCOPE, "do we use expensify") == "do we use expensify"  # two edits from "expensive"
    assert speller.correct(SCOPE, "the idnetity") == "the identity"  # a transposition is one edit
    assert speller.correct(SCOPE, "any appts or wtrd") == "any appts or wtrd"  # "appts" is not "apps"; "wtrd": 4 letters
    assert speller.correct(SCOPE, "plnts") == "plants"  # five letters, corrected to a longer word
    assert speller.correct(SCOPE, "the passPhrse") == "the passPhrse"  # mixed case: a name, as meant
    assert speller.correct(SCOPE, "Passphrse") == "passphrase"  # a capital first letter is not a name
    assert speller.correct(SCOPE, "portals") == "portals"  # English; and "portal" would be the same stem
    assert speller.correct(SCOPE, "identitys") == "identitys"  # only another form of "identity"


def test_a_channels_or_workspaces_words_never_correct_anothers_question(store):
    speller = Speller(store)
    assert speller.correct(SCOPE, "when does the initeck deal close") == "when does the initeck deal close"
    assert speller.correct(Scope("T1", "C2"), "when does the initeck deal close") == "when does the initech deal close"
    assert speller.correct(SCOPE, "kubernetis upgrades") == "kubernetis upgrades"
    assert speller.correct(Scope("T2", "C1"), "kubernetis upgrades") == "kubernetes upgrades"
    assert speller.correct(Scope("T3", "C1"), "kubernetis") == "kubernetis"  # no documents at all


def test_what_this_process_writes_is_read_again(store):
    speller = Speller(store, min_rebuild_s=0.0)
    assert speller.correct(SCOPE, "the zepelin hangar") == "the zepelin hangar"  # nothing close yet
    (fleet,) = _add(store, SCOPE, "fleet.md", ["The zeppelin fleet is stored in hangar nine."])
    # The words read before answer until the new ones are read, in the background.
    assert _eventually(lambda: speller.correct(SCOPE, "the zepelin hangar") == "the zeppelin hangar")
    store.delete_document(fleet.doc_id)
    assert _eventually(lambda: speller.correct(SCOPE, "the zepelin hangar") == "the zepelin hangar")


def test_another_processes_writes_are_read_after_refresh_s_unless_the_store_is_this_processes_alone(store):
    speller = Speller(store, refresh_s=0.05, min_rebuild_s=0.0)
    assert speller.correct(SCOPE, "the blimpz") == "the blimpz"
    seen = store.generation
    _add(store, SCOPE, "airships.md", ["Every blimps inspection is logged."])
    store.generation = seen  # as if another process had written: this one didn't count it
    time.sleep(0.1)
    assert speller.correct(SCOPE, "the blimpz") == "the blimpz"  # Edge: only this process writes
    time.sleep(0.3)
    assert speller.correct(SCOPE, "the blimpz") == "the blimpz"
    store.backend.exclusive = False  # a Qdrant server: other processes write too
    assert _eventually(lambda: speller.correct(SCOPE, "the blimpz") == "the blimps")


def test_only_live_chunks_lend_their_words(store):
    staged = make_chunks(SCOPE, "draft.md", ["The quarterly hackathon happens offsite."])
    store.stage(staged[0].doc_id, store.next_version(staged[0].doc_id), staged, vectors(staged))
    assert "hackathon" not in _words_of(store, SCOPE)
    assert Speller(store).correct(SCOPE, "when is the hackaton") == "when is the hackaton"


class FailingTexts:
    """A store whose reads fail (a Qdrant server gone away), counting them."""

    def __init__(self, store):
        self.store, self.reads, self.generation, self.backend = store, 0, 0, store.backend

    def channel_texts(self, workspace, channel):
        self.reads += 1
        raise ConnectionError("qdrant unreachable")


def test_a_failed_read_leaves_questions_uncorrected_and_is_not_retried_per_question(store):
    failing = FailingTexts(store)
    speller = Speller(failing, refresh_s=3600, min_rebuild_s=0.0)
    before = threading.active_count()
    for _ in range(20):
        failing.generation += 1  # writes keep coming: still no read before refresh_s
        assert speller.correct(SCOPE, "how ofetn") == "how ofetn"
    assert failing.reads == 2 and threading.active_count() <= before + 1  # once per part: the channel, the workspace-wide


def test_concurrent_first_questions_read_the_words_once(store):
    reads = []
    texts = store.channel_texts
    def slow_texts(workspace, channel):  # a read long enough for every asker to arrive during it
        reads.append((workspace, channel))
        time.sleep(0.3)
        return texts(workspace, channel)

    store.channel_texts = slow_texts
    speller = Speller(store)
    answers = []
    askers = [threading.Thread(target=lambda: answers.append(speller.correct(SCOPE, "how ofetn"))) for _ in range(8)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    assert answers == ["how often"] * 8 and sorted(reads) == sorted([("T1", "C1"), ("T1", WORKSPACE_WIDE)])


def test_the_retriever_searches_and_judges_one_corrected_text_and_remembers_the_asked_one(store):
    embedder = HashEmbeddings()
    plain = HybridRetriever(store=store, embedder=embedder, scope=SCOPE)
    speller = Speller(store)
    corrected = HybridRetriever(store=store, embedder=embedder, scope=SCOPE, speller=speller)
    asked = "how ofetn must the passphrse be rotatte"
    assert corrected.search_text(asked) == "how often must the passphrase be rotate"
    assert plain.search_text(asked) == asked
    hits = corrected.search(asked)
    assert hits[0].chunk.text == POLICY and hits[0].sparse_score  # BM25 matched its words
    assert all(h.sparse_score is None for h in plain.search(asked))  # as asked, BM25 matches nothing
    # The gate reads the store's order for the question as it was asked ...
    assert [h.chunk.chunk_index for h in corrected.gate_hits(asked, [])] == [h.chunk.chunk_index for h in hits]
    # ... and the very text the search read, even once the speller would correct otherwise.
    speller.correct = lambda scope, text: "something else"
    assert corrected.search_text(asked) == "how often must the passphrase be rotate"


def test_every_channel_shares_one_read_of_the_workspace_wide_words(store):
    reads = []
    texts = store.channel_texts
    store.channel_texts = lambda workspace, channel: reads.append((workspace, channel)) or texts(workspace, channel)
    _add(store, Scope.workspace_wide("T1"), "handbook.md", ["The zeppelin fleet is stored in hangar nine."])
    speller = Speller(store)
    for scope in (SCOPE, Scope("T1", "C2"), Scope("T1", None), Scope("T1", "C9")):
        assert speller.correct(scope, "the zepelin") == "the zeppelin"
    assert sorted(reads) == sorted([("T1", WORKSPACE_WIDE), ("T1", "C1"), ("T1", "C2"), ("T1", "C9")])
    # A channel's own words still stay in that channel.
    assert speller.correct(Scope("T1", "C2"), "the initeck deal") == "the initech deal"
    assert speller.correct(Scope("T1", "C9"), "the initeck deal") == "the initeck deal"


def test_a_words_chunks_are_counted_across_the_parts_a_scope_reads(store):
    _add(store, Scope.workspace_wide("T1"), "banks.md", ["Two banks hold the funds.", "The banks close at five.", "Bands play."])
    _add(store, SCOPE, "bands.md", ["Three bands play at the party.", "The bands rehearse on Fridays."])
    speller = Speller(store)
    # Workspace-wide alone: "banks" (2 chunks) beats "bands" (1); with the channel's: bands 3, banks 2.
    assert speller.correct(Scope("T1", None), "the bancs") == "the banks"
    assert speller.correct(SCOPE, "the bancs") == "the bands"


def test_a_slow_first_read_holds_up_only_the_questions_that_need_it(store):
    release = threading.Event()
    texts = store.channel_texts

    def texts_of(workspace, channel):
        if workspace == "T1":  # T1's read hangs until released
            release.wait(10)
        return texts(workspace, channel)

    store.channel_texts = texts_of
    speller = Speller(store, first_wait_s=30)
    slow = threading.Thread(target=speller.correct, args=(SCOPE, "how ofetn"))
    slow.start()
    try:
        other = []
        asker = threading.Thread(target=lambda: other.append(speller.correct(Scope("T2", "C1"), "kubernetis upgrades")))
        asker.start()
        asker.join(5)
        assert other == ["kubernetes upgrades"] and slow.is_alive()  # T2 answered while T1 still reads
    finally:
        release.set()
        slow.join()
    assert speller.correct(SCOPE, "how ofetn") == "how often"


def test_questions_wait_for_a_first_read_only_until_first_wait_s_then_go_uncorrected_until_it_ends(store):
    release = threading.Event()
    texts = store.channel_texts
    reads = []

    def hanging(workspace, channel):  # a part of 100k chunks: seconds to read
        reads.append((workspace, channel))
        release.wait(10)
        return texts(workspace, channel)

    store.channel_texts = hanging
    speller = Speller(store, first_wait_s=0.2)
    try:
        assert speller.correct(SCOPE, "how ofetn") == "how ofetn"  # waited 0.2 s, then as asked
        assert speller.correct(SCOPE, "how ofetn") == "how ofetn"  # the read still under way: not read twice
    finally:
        release.set()
    assert _eventually(lambda: speller.correct(SCOPE, "how ofetn") == "how often")
    assert sorted(reads) == sorted([("T1", "C1"), ("T1", WORKSPACE_WIDE)])


def test_warm_reads_every_part_now_however_long_it_takes(store):
    texts = store.channel_texts

    def slow(workspace, channel):
        time.sleep(0.3)
        return texts(workspace, channel)

    store.channel_texts = slow
    speller = Speller(store, first_wait_s=0.0)
    speller.warm(SCOPE)
    assert speller.correct(SCOPE, "how ofetn") == "how often"


def test_a_scope_with_one_part_still_unread_goes_uncorrected(store):
    _add(store, Scope.workspace_wide("T1"), "handbook.md", ["The zeppelin fleet is stored in hangar nine."])
    release = threading.Event()
    texts = store.channel_texts

    def channel_hangs(workspace, channel):
        if channel != WORKSPACE_WIDE:
            release.wait(10)
        return texts(workspace, channel)

    store.channel_texts = channel_hangs
    speller = Speller(store, first_wait_s=0.1)
    try:
        assert speller.correct(Scope("T1", None), "the zepelin") == "the zeppelin"  # its one part is read
        # C1's own words are not read yet: the workspace-wide ones alone could correct what C1 has.
        assert speller.correct(SCOPE, "the zepelin") == "the zepelin"
    finally:
        release.set()
    assert _eventually(lambda: speller.correct(SCOPE, "the zepelin") == "the zeppelin")


def test_settle_waits_for_the_first_reads_under_way(store):
    release = threading.Event()
    texts = store.channel_texts
    store.channel_texts = lambda workspace, channel: release.wait(10) and texts(workspace, channel)
    speller = Speller(store, first_wait_s=0.0)
    assert speller.correct(SCOPE, "how ofetn") == "how ofetn"
    assert speller.settle(timeout=0.1) is False  # still reading
    release.set()
    assert speller.settle() is True
    assert speller.correct(SCOPE, "how ofetn") == "how often"


def test_a_read_cut_short_by_closing_the_store_is_not_reported_as_a_failure(store, caplog):
    speller = Speller(store)
    store.close()
    with caplog.at_level("DEBUG", logger="knowledge.spelling"):
        assert speller.correct(SCOPE, "how ofetn") == "how ofetn"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("closed" in r.getMessage() for r in caplog.records)
