"""The ChunkStore contract, run against both backends (Qdrant Edge and qdrant-client local mode;
the `store` fixture): CRUD, scope filtering, replace semantics, persistence."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from knowledge.types import WORKSPACE_WIDE, Scope
from tests.knowledge.conftest import make_chunks, open_kind, qvec, vectors


def _add(store, scope, name, texts, **kw):
    chunks = make_chunks(scope, name, texts, **kw)
    store.add(chunks, vectors(chunks))
    return chunks


def _search(store, text, scope, limit=10):
    return store.search(text, qvec(text), scope, limit)


def test_add_search_returns_payload_and_scores(store):
    scope = Scope("T1", "C1")
    _add(store, scope, "travel.md", ["Per diem for travel is 50 dollars a day", "Expense reports are due monthly"])
    hits = _search(store, "travel per diem", scope)
    assert hits[0].chunk.text.startswith("Per diem")
    assert hits[0].chunk.scope == scope and hits[0].chunk.source == "travel.md"
    assert hits[0].dense_score is not None and hits[0].sparse_score is not None
    assert hits[0].score >= hits[-1].score
    assert store.count() == 2


def test_search_respects_channel_and_workspace_scope(store):
    _add(store, Scope("T1", "C1"), "c1.md", ["vacation policy for channel one"])
    _add(store, Scope("T1", "C2"), "c2.md", ["vacation policy for channel two"])
    _add(store, Scope.workspace_wide("T1"), "all.md", ["vacation policy for everyone"])
    _add(store, Scope("T2", "C1"), "other.md", ["vacation policy other workspace"])
    seen = lambda scope: {h.chunk.source for h in _search(store, "vacation policy", scope)}
    assert seen(Scope("T1", "C1")) == {"c1.md", "all.md"}
    assert seen(Scope("T1", "C2")) == {"c2.md", "all.md"}
    assert seen(Scope("T1", None)) == {"all.md"}  # a DM sees workspace-wide only
    assert seen(Scope.workspace_wide("T1")) == {"all.md"}
    assert seen(Scope("T2", "C1")) == {"other.md"}
    assert seen(Scope("T3", "C1")) == set()


def test_best_elsewhere_is_the_closest_chunk_of_the_workspace_the_scope_cannot_read(store):
    _add(store, Scope("T1", "C1"), "c1.md", ["vacation policy for channel one"])
    _add(store, Scope("T1", "C2"), "c2.md", ["payroll calendar for channel two", "vacation carryover rules"])
    _add(store, Scope.workspace_wide("T1"), "all.md", ["vacation policy for everyone"])
    _add(store, Scope("T2", "C9"), "other.md", ["vacation policy other workspace"])
    pending = make_chunks(Scope("T1", "C3"), "draft.md", ["vacation policy draft"])
    store.stage(pending[0].doc_id, store.next_version(pending[0].doc_id), pending, vectors(pending))
    query = "vacation policy"
    q = qvec(query)
    c2 = make_chunks(Scope("T1", "C2"), "c2.md", ["payroll calendar for channel two", "vacation carryover rules"])
    c1 = make_chunks(Scope("T1", "C1"), "c1.md", ["vacation policy for channel one"])
    cos = lambda chunks: max(float(v @ q) for v in vectors(chunks))
    # From C1: only C2's chunks are out of reach (not C1's, not the workspace-wide, not another
    # workspace's, not a version still pending); the number is the best of their cosines.
    assert store.best_elsewhere(q, Scope("T1", "C1")) == pytest.approx(cos(c2), abs=1e-4)
    # From a DM (workspace-wide only), both channels are elsewhere.
    assert store.best_elsewhere(q, Scope("T1", None)) == pytest.approx(max(cos(c1), cos(c2)), abs=1e-4)
    assert store.best_elsewhere(lambda: q, Scope("T1", "C1")) == pytest.approx(cos(c2), abs=1e-4)
    # A workspace whose every document the scope reads has nothing elsewhere.
    assert store.best_elsewhere(q, Scope("T2", "C9")) is None
    assert store.best_elsewhere(q, Scope("T3", "C1")) is None


def test_query_of_only_stopwords_still_searches_dense(store):
    scope = Scope("T1", "C1")
    _add(store, scope, "a.md", ["the and of"])
    assert len(_search(store, "the of", scope)) == 1


def test_replace_document_keeps_only_new_version(store):
    scope = Scope("T1", "C1")
    old = _add(store, scope, "policy.md", ["old rule one", "old rule two", "old rule three"], content_hash="v1", ingested_at=1.0)
    new = make_chunks(scope, "policy.md", ["new rule one"], content_hash="v2", ingested_at=2.0)
    store.replace_document(new[0].doc_id, new, vectors(new))
    assert store.document_hash(old[0].doc_id) == "v2"
    assert {h.chunk.content_hash for h in _search(store, "rule", scope)} == {"v2"}
    assert store.count() == 1
    assert store.documents(scope)[0]["chunks"] == 1


def test_search_during_replace_never_mixes_versions(store):
    # Simulate the moment between insert-new and delete-old: both versions are stored.
    scope = Scope("T1", "C1")
    _add(store, scope, "policy.md", ["rule one old", "rule two old"], content_hash="v1", ingested_at=1.0)
    _add(store, scope, "policy.md", ["rule one new", "rule two new"], content_hash="v2", ingested_at=2.0)
    hits = _search(store, "rule one", scope)
    assert {h.chunk.content_hash for h in hits} == {"v2"}
    assert store.document_hash(hits[0].chunk.doc_id) == "v2"
    assert [d["content_hash"] for d in store.documents(scope)] == ["v2"]


def test_re_adding_identical_content_does_not_duplicate(store):
    scope = Scope("T1", "C1")
    _add(store, scope, "a.md", ["same text", "more text"], content_hash="h")
    _add(store, scope, "a.md", ["same text", "more text"], content_hash="h")
    assert store.count() == 2


def test_delete_document_removes_every_chunk(store):
    scope = Scope("T1", "C1")
    a = _add(store, scope, "a.md", ["alpha one", "alpha two"])
    _add(store, scope, "b.md", ["beta one"])
    assert store.delete_document(a[0].doc_id) == 2
    assert store.delete_document(a[0].doc_id) == 0
    assert {h.chunk.source for h in _search(store, "alpha", scope)} == {"b.md"}
    assert store.document_hash(a[0].doc_id) is None


def test_documents_lists_exact_scope_with_counts_and_pages(store):
    c1 = Scope("T1", "C1")
    _add(store, c1, "a.pdf", ["p1", "p2", "p3"], pages=[1, 2, 3])
    _add(store, c1, "b.md", ["only"])
    _add(store, Scope.workspace_wide("T1"), "wide.md", ["w"])
    docs = store.documents(c1)
    assert [(d["source"], d["chunks"], d["pages"]) for d in docs] == [("a.pdf", 3, 3), ("b.md", 1, None)]
    assert [d["source"] for d in store.documents(Scope("T1", None))] == ["wide.md"]
    assert docs[0]["channel"] == "C1" and store.documents(Scope("T1", "C9")) == []
    assert {"doc_id", "title", "url", "content_hash", "ingested_at"} <= set(docs[0])


def test_documents_pages_through_many_chunks(store, monkeypatch):
    monkeypatch.setattr("knowledge.store.SCROLL_PAGE", 64)  # several pages without thousands of chunks
    scope = Scope("T1", WORKSPACE_WIDE)
    _add(store, scope, "big.md", [f"chunk number {i}" for i in range(250)])
    assert store.documents(scope)[0]["chunks"] == 250


def test_data_survives_close_and_reopen(kind, tmp_path):
    s = open_kind(kind, tmp_path)
    scope = Scope("T1", "C1")
    _add(s, scope, "a.md", ["persistent fact about llamas"])
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError):
        s.count()
    s2 = open_kind(kind, tmp_path)
    try:
        assert s2.count() == 1
        assert _search(s2, "llamas", scope)[0].chunk.text == "persistent fact about llamas"
    finally:
        s2.close()


def test_rejects_mismatched_vectors(store):
    chunks = make_chunks(Scope("T1", "C1"), "a.md", ["one", "two"])
    with pytest.raises(ValueError):
        store.add(chunks, vectors(chunks)[:1])
    with pytest.raises(ValueError):
        store.add(chunks, np.zeros((2, 12), dtype=np.float32))
    assert store.count() == 0


def test_concurrent_writers_and_readers(store):
    scope = Scope("T1", "C1")
    errors: list[BaseException] = []

    def write(i):
        try:
            _add(store, scope, f"doc{i}.md", [f"document {i} text {j}" for j in range(20)])
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    def read():
        try:
            for _ in range(20):
                _search(store, "document text", scope)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count() == 120


def _scope_keys(store) -> dict[str, set]:
    """state → the LIVE_SCOPE values its points carry (None for a point without one)."""
    from knowledge.chunk_records import LIVE_SCOPE, STATE

    payloads, _ = store.backend.scroll(store.backend.filter({"must": []}), [LIVE_SCOPE, STATE], None, 1000)
    out: dict[str, set] = {}
    for p in payloads:
        out.setdefault(p[STATE], set()).add(p.get(LIVE_SCOPE))
    return out


def test_only_live_points_carry_the_scope_key_searches_filter_on(store):
    from knowledge.chunk_records import scope_key

    scope = Scope("T1", "C1")
    chunks = make_chunks(scope, "pto.md", ["paid time off accrues monthly", "carry over five days"])
    store.stage(chunks[0].doc_id, 1, chunks, vectors(chunks))
    assert _scope_keys(store) == {"pending": {None}}  # a pending point can match no search's filter
    assert _search(store, "paid time off", scope) == []
    store.publish(chunks[0].doc_id, 1, len(chunks))
    assert _scope_keys(store) == {"live": {scope_key("T1", "C1")}}
    assert _search(store, "paid time off", scope)[0].chunk.text.startswith("paid time off")
    _add(store, Scope.workspace_wide("T1"), "all.md", ["holidays for everyone"])  # `add` writes live at once
    assert _scope_keys(store)["live"] == {scope_key("T1", "C1"), scope_key("T1", WORKSPACE_WIDE)}


def test_scope_keys_of_lookalike_names_never_collide():
    from knowledge.chunk_records import scope_key

    # A separator inside a name must not let two different scopes share a key.
    assert scope_key("T1", "a|b") != scope_key("T1|a", "b")
    assert scope_key('T"1', "C") != scope_key("T", '1"C')
    assert len({scope_key(w, c) for w, c in [("a", "bc"), ("ab", "c"), ("a,b", "c"), ("a", "b,c")]}) == 4


def test_a_version_holds_chunks_of_one_scope(store):
    here = make_chunks(Scope("T1", "C1"), "x.md", ["one"])
    elsewhere = make_chunks(Scope("T1", "C2"), "x.md", ["two"])
    mixed = [here[0], dataclasses.replace(elsewhere[0], doc_id=here[0].doc_id, content_hash=here[0].content_hash,
                                          chunk_index=1)]
    with pytest.raises(ValueError, match="one scope"):
        store.stage(here[0].doc_id, 1, mixed, vectors(mixed))
    assert store.versions() == []


def test_points_written_before_the_scope_key_are_upgraded_when_the_store_opens(kind, tmp_path):
    from knowledge.chunk_records import LIVE_SCOPE, scope_key

    s = open_kind(kind, tmp_path)
    _add(s, Scope("T1", "C1"), "old.md", ["the parking garage closes at nine"])
    _add(s, Scope("T2", "C1"), "other.md", ["the parking garage in the other office"])
    s.backend.set_payload(s.backend.filter({"must": []}), {LIVE_SCOPE: None})  # as an older docent wrote them
    assert _search(s, "parking garage", Scope("T1", "C1")) == []
    s.close()
    s = open_kind(kind, tmp_path)
    try:
        assert _scope_keys(s)["live"] == {scope_key("T1", "C1"), scope_key("T2", "C1")}
        hits = _search(s, "parking garage", Scope("T1", "C1"))
        assert [h.chunk.source for h in hits] == ["old.md"]
    finally:
        s.close()


def test_search_with_a_vector_callable_ranks_as_with_the_vector(store):
    scope = Scope("T1", "C1")
    _add(store, scope, "travel.md", ["Per diem for travel is 50 dollars a day", "Expense reports are due monthly",
                                     "Hotels are booked through the travel desk"])
    calls = []

    def vector():
        calls.append(threading.current_thread().name)
        return qvec("travel hotel per diem")

    given = store.search("travel hotel per diem", qvec("travel hotel per diem"), scope, 5)
    deferred = store.search("travel hotel per diem", vector, scope, 5)
    assert [(h.chunk.text, round(h.score, 6), h.dense_score and round(h.dense_score, 6)) for h in deferred] == \
           [(h.chunk.text, round(h.score, 6), h.dense_score and round(h.dense_score, 6)) for h in given]
    assert calls == [threading.current_thread().name]  # the caller's thread embeds; the BM25 side went elsewhere


def test_an_embedding_that_fails_fails_the_search_and_frees_its_worker(store):
    scope = Scope("T1", "C1")
    _add(store, scope, "a.md", ["alpha beta gamma"])

    def broken():
        raise RuntimeError("model went away")

    for _ in range(8):  # more than the BM25 pool has threads
        with pytest.raises(RuntimeError, match="model went away"):
            store.search("alpha", broken, scope, 5)
    # Had any failure left its worker waiting, this search's BM25 side would never run.
    found = []
    searcher = threading.Thread(target=lambda: found.extend(store.search("alpha beta", lambda: qvec("alpha beta"),
                                                                         scope, 5)), daemon=True)
    searcher.start()
    searcher.join(timeout=30)
    assert not searcher.is_alive() and found[0].chunk.text == "alpha beta gamma"


def test_the_bm25_side_starts_when_the_model_does(store):
    from knowledge.embeddings import model_starting

    scope = Scope("T1", "C1")
    _add(store, scope, "a.md", ["alpha beta gamma"])
    order = []
    queried = store.backend.query

    def recording_query(queries, *args):
        order.append("dense" if queries[0].dense is not None else "bm25")
        return queried(queries, *args)

    store.backend.query = recording_query

    def vector():
        order.append("tokenized")
        model_starting()  # what the ONNX and torch embedders signal right before the model runs
        threading.Event().wait(0.2)  # the model computing (it has let go of the GIL)
        order.append("model done")
        return qvec("alpha beta")

    assert store.search("alpha beta", vector, scope, 5)[0].chunk.text == "alpha beta gamma"
    assert order == ["tokenized", "bm25", "model done", "dense"]


def test_a_hit_only_bm25_found_carries_its_exact_cosine(store):
    from knowledge.fusion import candidate_limit

    scope = Scope("T1", "C1")
    filler = make_chunks(scope, "filler.md", [f"routine note number {i}" for i in range(candidate_limit(5) + 10)])
    (target,) = make_chunks(scope, "rare.md", ["the zanzibar office closes early"])
    rng = np.random.default_rng(5)
    dim = vectors(filler).shape[1]
    query = rng.standard_normal(dim).astype(np.float32)
    query /= np.linalg.norm(query)

    def at_cosine(c):  # a unit vector about `c` from the query
        other = rng.standard_normal(dim).astype(np.float32)
        other -= (other @ query) * query
        return c * query + np.sqrt(1 - c * c) * other / np.linalg.norm(other)

    # Every filler is closer than the target on the dense side, so the target is outside the
    # dense candidates; only BM25 ("zanzibar") finds it, and fused it comes first.
    store.add(filler, np.stack([at_cosine(0.3) for _ in filler]))
    far = at_cosine(0.1)
    store.add([target], far[None, :])
    hits = store.search("zanzibar", query, scope, 5)
    found = [h for h in hits if h.chunk.source == "rare.md"]
    assert found, "BM25 alone found it"
    expected = float(far @ query)
    assert found[0].dense_score == pytest.approx(expected, abs=1e-5)


def test_a_newer_version_ranked_below_the_old_ones_is_still_what_a_search_returns(store):
    # Both versions live (between publish and retire); the old one's chunks rank first. The
    # search reads a few candidates whole at a time, and keeps reading past the old version's.
    scope = Scope("T1", "C1")
    _add(store, scope, "policy.md", ["rule one"] * 6, content_hash="v1", ingested_at=1.0)
    _add(store, scope, "policy.md", ["rule one changed in the newest revision of the policy"],
         content_hash="v2", ingested_at=2.0)
    hits = store.search("rule one", qvec("rule one"), scope, 1)
    assert [(h.chunk.content_hash, h.chunk.text) for h in hits] == \
           [("v2", "rule one changed in the newest revision of the policy")]


def test_a_longer_search_from_the_same_candidates_starts_with_the_shorter_ones_hits(store):
    import random

    from knowledge.fusion import candidate_limit

    scope = Scope("T1", "C1")
    words = ["leave", "travel", "expense", "laptop", "badge", "payroll", "vacation", "policy", "office", "remote"]
    _add(store, scope, "many.md", [" ".join(words[(i * 7 + j) % 10] for j in range(3 + i % 5)) + f" item {i}"
                                   for i in range(160)])
    rng = random.Random(3)
    moved = 0
    for query in (" ".join(rng.choice(words) for _ in range(3)) for _ in range(40)):
        five = store.search(query, qvec(query), scope, 5)
        ten = store.search(query, qvec(query), scope, 10, candidates=candidate_limit(5))
        assert len(ten) == 10
        assert [h.chunk.chunk_index for h in ten[:5]] == [h.chunk.chunk_index for h in five], query
        assert [h.score for h in ten[:5]] == pytest.approx([h.score for h in five])
        # Fused from its own, larger pool, a longer search may start differently.
        moved += [h.chunk.chunk_index for h in store.search(query, qvec(query), scope, 10)[:5]] != [
            h.chunk.chunk_index for h in five]
    assert moved > 0  # so the parameter is what kept the prefixes equal above
    # Fewer candidates than the limit: the limit is still filled.
    assert len(store.search("vacation policy", qvec("vacation policy"), scope, 12, candidates=3)) == 12
