"""Versions in the store, on both backends: a version is searchable only once it is complete
(pending → live in one operation), a failed one leaves nothing, writers delete only older
versions, and leftovers are swept."""

from __future__ import annotations

import pytest

from knowledge import sparse
from knowledge.chunk_records import point_id
from knowledge.server_store import QdrantServerStore
from knowledge.store import PointData, VersionSuperseded
from knowledge.types import Scope
from tests.conftest import FailingBackend, StoreFailure
from tests.knowledge.conftest import make_chunks, open_kind, qvec, vectors

C1 = Scope("T1", "C1")
OLD = ["leave is twenty days", "sick leave needs a note", "holidays follow the calendar"]
NEW = ["leave is thirty days", "parental leave is sixteen weeks", "holidays are flexible", "remote work is fine"]


def _version(texts, content_hash, *, ingested_at=1.0):
    """One version of leave.md in C1: its chunks and their vectors."""
    chunks = make_chunks(C1, "leave.md", texts, content_hash=content_hash, ingested_at=ingested_at)
    return chunks, vectors(chunks)


def _write(store, texts, content_hash, version, **kw):
    chunks, vecs = _version(texts, content_hash, **kw)
    assert store.replace_document(chunks[0].doc_id, chunks, vecs, version=version)
    return chunks[0].doc_id


def _seen(store, query="leave days holidays", scope=C1):
    """(content hashes, chunk texts) a search in `scope` returns."""
    hits = store.search(query, qvec(query), scope, 20)
    return {h.chunk.content_hash for h in hits}, sorted(h.chunk.text for h in hits)


def test_a_staged_version_is_invisible_until_published(store):
    doc_id = _write(store, OLD, "v1", 1)
    chunks, vecs = _version(NEW, "v2")
    store.stage(doc_id, 2, chunks, vecs)
    assert _seen(store) == ({"v1"}, sorted(OLD))
    assert store.document_hash(doc_id) == "v1"
    assert [d["chunks"] for d in store.documents(C1)] == [3] and store.count() == 3
    store.publish(doc_id, 2, len(chunks))
    # Published, not yet retired: both are live, readers see only the newer one.
    assert _seen(store) == ({"v2"}, sorted(NEW))
    assert store.document_hash(doc_id) == "v2" and [d["chunks"] for d in store.documents(C1)] == [4]
    assert store.retire(doc_id, 2)
    assert [(v.version, v.live, v.chunks) for v in store.versions(doc_id)] == [(2, True, 4)]


def test_versions_order_by_number_not_by_clock(store):
    doc_id = _write(store, OLD, "v1", 1, ingested_at=2000.0)
    chunks, vecs = _version(NEW, "v2", ingested_at=10.0)  # this writer's clock is behind
    store.stage(doc_id, 2, chunks, vecs)
    store.publish(doc_id, 2, len(chunks))
    assert _seen(store)[0] == {"v2"} and store.document_hash(doc_id) == "v2"
    assert [d["content_hash"] for d in store.documents(C1)] == ["v2"]


def test_a_replacement_failing_midway_keeps_the_old_version_whole(store, small_batches):
    doc_id = _write(store, OLD, "v1", 1)
    store.backend = FailingBackend(store.backend, "upsert", fail_on=2)  # the 2nd of 4 writes
    chunks, vecs = _version(NEW, "v2")
    with pytest.raises(StoreFailure):
        store.replace_document(doc_id, chunks, vecs, version=2)
    assert _seen(store) == ({"v1"}, sorted(OLD))
    assert store.document_hash(doc_id) == "v1"
    assert [(v.version, v.live) for v in store.versions(doc_id)] == [(1, True)]  # nothing of v2 left
    store.backend = store.backend.inner
    assert store.replace_document(doc_id, chunks, vecs, version=3)  # and trying again works
    assert _seen(store) == ({"v2"}, sorted(NEW))


def test_a_new_document_failing_midway_leaves_nothing(store, small_batches):
    store.backend = FailingBackend(store.backend, "upsert", fail_on=2)
    chunks, vecs = _version(NEW, "v1")
    with pytest.raises(StoreFailure):
        store.replace_document(chunks[0].doc_id, chunks, vecs, version=1)
    store.backend = store.backend.inner
    assert _seen(store) == (set(), [])
    assert store.documents(C1) == [] and store.document_hash(chunks[0].doc_id) is None
    assert store.versions() == []


def test_a_publish_step_that_fails_or_refuses_removes_the_version(store):
    """`publish` stands for the registry: recording the flip may fail, or find a newer version."""
    doc_id = _write(store, OLD, "v1", 1)
    chunks, vecs = _version(NEW, "v2")

    def flip_then_fail(go_live):
        go_live()
        raise StoreFailure("the registry went away")

    with pytest.raises(StoreFailure):
        store.replace_document(doc_id, chunks, vecs, version=2, publish=flip_then_fail)
    assert _seen(store) == ({"v1"}, sorted(OLD))
    assert not store.replace_document(doc_id, chunks, vecs, version=3, publish=lambda go_live: False)
    assert [(v.version, v.live) for v in store.versions(doc_id)] == [(1, True)]


def test_an_older_writer_deletes_only_versions_older_than_its_own(store):
    """Two writers of one document: the newer one publishes first, the older one after."""
    doc_id = _write(store, OLD, "v1", 1)
    older, older_vecs = _version(["leave is twenty five days"], "v2")
    newer, newer_vecs = _version(NEW, "v3")
    store.stage(doc_id, 2, older, older_vecs)
    store.stage(doc_id, 3, newer, newer_vecs)
    store.publish(doc_id, 3, len(newer))
    assert store.retire(doc_id, 3)  # sweeps v1 and the older writer's pending v2 …
    with pytest.raises(VersionSuperseded):
        store.publish(doc_id, 2, len(older))  # … so v2 finds itself incomplete and leaves
    assert not store.retire(doc_id, 2)
    assert _seen(store) == ({"v3"}, sorted(NEW))
    assert [(v.version, v.live) for v in store.versions(doc_id)] == [(3, True)]

    def newer_writer_first(go_live):  # v5 is written, published and retires all older in between
        assert store.replace_document(doc_id, newer, newer_vecs, version=5)
        go_live()
        return True

    # Through `replace_document` the same race is a lost write, not an error.
    assert not store.replace_document(doc_id, older, older_vecs, version=4, publish=newer_writer_first)
    assert [(v.version, v.live) for v in store.versions(doc_id)] == [(5, True)]


def test_a_late_complete_older_version_removes_itself(store):
    doc_id = _write(store, NEW, "v3", 3)
    chunks, vecs = _version(OLD, "v2")
    store.stage(doc_id, 2, chunks, vecs)  # written after v3 retired everything older
    store.publish(doc_id, 2, len(chunks))
    assert _seen(store)[0] == {"v3"}  # live for a moment, but never the one readers get
    assert not store.retire(doc_id, 2)
    assert [v.version for v in store.versions(doc_id)] == [3]


def test_next_version_counts_past_stored_and_handed_out_numbers(store):
    doc_id = _write(store, OLD, "v1", 7)
    assert store.next_version(doc_id) == 8
    assert store.next_version(doc_id) == 9  # handed out, not yet written: still taken
    assert store.next_version("another-doc") == 1


def test_delete_through_a_version_keeps_newer_ones(store):
    doc_id = _write(store, OLD, "v1", 1)
    chunks, vecs = _version(NEW, "v2")
    store.stage(doc_id, 2, chunks, vecs)
    store.publish(doc_id, 2, len(chunks))
    assert store.delete_document(doc_id, through_version=1) == 3
    assert [v.version for v in store.versions(doc_id)] == [2]
    assert store.delete_document(doc_id) == 4 and store.versions() == []


def test_pending_leftovers_are_swept_when_an_owned_store_opens(kind, tmp_path):
    s = open_kind(kind, tmp_path)
    doc_id = _write(s, OLD, "v1", 1)
    chunks, vecs = _version(NEW, "v2")
    s.stage(doc_id, 2, chunks, vecs)  # … and the process dies here
    s.close()
    s = open_kind(kind, tmp_path)
    try:
        assert [(v.version, v.live) for v in s.versions(doc_id)] == [(1, True)]
        assert _seen(s) == ({"v1"}, sorted(OLD))
    finally:
        s.close()


def test_a_store_on_a_shared_server_never_sweeps_on_open():
    """Another replica may be half-way through writing: its pending points are not leftovers."""
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    try:
        writer = QdrantServerStore(client=client, collection="shared")
        chunks, vecs = _version(NEW, "v1")
        writer.stage(chunks[0].doc_id, 1, chunks, vecs)
        QdrantServerStore(client=client, collection="shared").close()  # a replica starts (and stops)
        writer.publish(chunks[0].doc_id, 1, len(chunks))
        assert _seen(writer) == ({"v1"}, sorted(NEW))
    finally:
        client.close()


def test_points_written_before_versions_are_live_version_zero(kind, tmp_path):
    s = open_kind(kind, tmp_path)
    (chunk,) = make_chunks(C1, "old.md", ["an old fact about leave"], content_hash="h0")
    # A point as an earlier docent wrote it: no version, no state.
    s.backend.upsert([PointData(point_id(chunk), vectors([chunk])[0].tolist(), sparse.document_vector(chunk.text),
                                chunk.payload())])
    assert s.count() == 0  # without a state the mandatory filter admits nothing
    s.close()
    s = open_kind(kind, tmp_path)
    try:
        assert _seen(s, "old fact leave") == ({"h0"}, ["an old fact about leave"])
        assert [(v.version, v.live) for v in s.versions(chunk.doc_id)] == [(0, True)]
        assert s.next_version(chunk.doc_id) == 1
    finally:
        s.close()
