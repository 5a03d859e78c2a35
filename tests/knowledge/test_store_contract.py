"""The ChunkStore contract, run against both backends (Qdrant Edge and qdrant-client local mode;
the `store` fixture): CRUD, scope filtering, replace semantics, persistence."""

from __future__ import annotations

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
