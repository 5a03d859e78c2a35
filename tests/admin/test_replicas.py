"""Replacing one document from two bot processes at once (several replicas on one Qdrant server).

Each "replica" here has its own `AdminOperations`, `KnowledgeBase`, store core and backend
instance, and its own `Database` engine on the real Postgres (same schema): version numbers, row
locks and the registry's compare-and-set all go through Postgres as in production. The Qdrant
server is stood in for by one qdrant-client local-mode client that both replicas' backends share,
taking one request at a time (`SerialClient`) as a server applies each request atomically.

The uploads run in two threads that pause at every step — allocating a version, each pending
write, entering the document lock (store flip + registry row), retiring older versions — and go
only when the schedule says (`Turns`), so the dangerous interleavings are forced, not hoped for.

Exercised: the protocol's order of store and database operations under every interleaving of
those steps, with real Postgres locking. Not exercised: a real Qdrant server (its own request
concurrency, network errors and timeouts, a multi-node cluster's replication lag — the protocol
assumes each write is visible to the next request, i.e. `wait=True` on a single node or strong
write consistency), and a replica dying mid-upload in server mode (kill -9 is tested on Edge in
`test_crash_recovery.py`; in server mode a dead replica's pending points stay until the next
upload of that document retires them).
"""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from qdrant_client import QdrantClient

from admin.db import Database
from admin.operations import AdminOperations
from admin.types import Actor
from knowledge.embeddings import HashEmbeddings
from knowledge.ingest import KnowledgeBase
from knowledge.server_store import QdrantServerStore
from knowledge.types import Scope, document_id

pytestmark = pytest.mark.postgres

CHANNEL = Scope("T1", "C1")
ALICE = Actor("slack", "T1", "UALICE", is_platform_admin=True)
BOB = Actor("discord", "T1", "UBOB", is_platform_admin=True)
ORIGINAL = b"# Travel\n\nBook travel through the desk.\n\n## Hotels\n\nHotels up to the per diem.\n"
CONTENT = {
    "A": b"# Travel\n\nAlice: book through the portal.\n\n## Trains\n\nTrains under four hours.\n\n## Hotels\n\nAlice hotels.\n",
    "B": b"# Travel\n\nBob: book through the agency.\n\n## Flights\n\nEconomy under six hours.\n\n## Hotels\n\nBob hotels.\n",
}


class SerialClient:
    """One qdrant-client shared by the replicas, one call at a time (a server's atomic requests)."""

    def __init__(self, client: QdrantClient):
        self._client, self._lock = client, threading.Lock()

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


class Turns:
    """Threads that stop at each step (`gate`) and take one step per turn the schedule gives them."""

    def __init__(self):
        self._cv = threading.Condition()
        self._waiting: dict[str, str | None] = {}  # replica → the step it waits at (None: running)
        self._passed: dict[str, int] = {}
        self._done: set[str] = set()
        self._go: set[str] = set()
        self.steps: list[tuple[str, str]] = []  # (replica, step) in the order they were taken
        self._active = False

    def gate(self, replica: str, step: str) -> None:
        if not self._active:  # outside `run` (setting a scene up) every step just goes
            return
        with self._cv:
            self._waiting[replica] = step
            self._cv.notify_all()
            self._cv.wait_for(lambda: replica in self._go)
            self._go.discard(replica)
            self._waiting[replica] = None
            self._passed[replica] = self._passed.get(replica, 0) + 1
            self.steps.append((replica, step))

    def run(self, jobs: dict, schedule: list[str]) -> dict:
        results: dict = {}

        def work(name, job):
            try:
                results[name] = job()
            except BaseException as e:  # noqa: BLE001 - reported to the test
                results[name] = e
            with self._cv:
                self._done.add(name)
                self._cv.notify_all()

        self._active = True
        threads = [threading.Thread(target=work, args=item, daemon=True) for item in jobs.items()]
        for t in threads:
            t.start()
        for name in itertools.chain(schedule, itertools.cycle(jobs)):
            if self._done >= set(jobs):
                break
            self._turn(name)
        for t in threads:
            t.join(5)
        self._active = False
        return results

    def _turn(self, name: str) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: name in self._done or self._waiting.get(name), 10), f"{name} stuck"
            if name in self._done:
                return
            before = self._passed.get(name, 0)
            self._go.add(name)
            self._cv.notify_all()
            arrived = self._cv.wait_for(
                lambda: name in self._done or (self._passed.get(name, 0) > before and self._waiting.get(name)), 10)
            assert arrived, f"{name} did not reach its next step"


def _replica(name: str, client, db_url: str, turns: Turns, collection: str) -> tuple[AdminOperations, Database]:
    db = Database(db_url)
    store = QdrantServerStore(client=client, collection=collection)
    kb = KnowledgeBase(store, HashEmbeddings(), chunk_tokens=64, overlap_tokens=10)
    ops = AdminOperations(kb, db)

    def gated(step, fn):
        def run(*args, **kwargs):
            turns.gate(name, step)
            return fn(*args, **kwargs)
        return run

    ops.registry.allocate_version = gated("allocate", ops.registry.allocate_version)
    ops.registry.locked = gated("lock", ops.registry.locked)  # the flip + row happen inside, ungated
    store.backend.upsert = gated("write", store.backend.upsert)
    store.retire = gated("retire", store.retire)
    return ops, db


@pytest.fixture
def cluster(postgres_db, monkeypatch):
    """(make two replicas for a fresh Turns, the shared client) over one Postgres schema."""
    monkeypatch.setattr("knowledge.store.UPSERT_BATCH", 1)  # one pending write per chunk: more steps
    client = SerialClient(QdrantClient(location=":memory:"))
    made: list[Database] = []

    def replicas(turns: Turns) -> dict[str, AdminOperations]:
        out = {}
        for name in "AB":
            ops, db = _replica(name, client, postgres_db.url, turns, "docent")
            made.append(db)
            out[name] = ops
        return out

    yield replicas
    for db in made:
        db.close()
    client.close()


def _race(replicas, turns: Turns, schedule: list[str], name: str):
    """Upload ORIGINAL, then A's and B's versions of `name` concurrently; return the reports and
    which replica took its version number last (the newer version)."""
    replicas["A"].upload(ALICE, name, ORIGINAL, CHANNEL)
    reports = turns.run({
        "A": lambda: replicas["A"].upload(ALICE, name, CONTENT["A"], CHANNEL),
        "B": lambda: replicas["B"].upload(BOB, name, CONTENT["B"], CHANNEL),
    }, schedule)
    allocations = [r for r, step in turns.steps if step == "allocate"]
    return reports, allocations[-1]


def _check(replicas, reports, winner: str, name: str) -> None:
    ops = replicas["A"]
    kb = ops.knowledge
    doc_id = document_id(CHANNEL, name)
    for r in reports.values():
        assert not isinstance(r, BaseException), r
    want = kb.load(name, CONTENT[winner]).content_hash
    versions = kb.store.versions(doc_id)
    row = ops.registry.get(doc_id)
    # The newer upload is the document, whole, in the store and in the registry.
    assert [(v.version, v.content_hash, v.live) for v in versions] == [(row.version, want, True)]
    assert row.content_hash == want and row.chunks == versions[0].chunks
    hits = kb.store.search("travel hotels", kb.embed_texts(["travel hotels"])[0], CHANNEL, 50)
    assert {h.chunk.content_hash for h in hits if h.chunk.source == name} == {want}
    uploader = {"A": ALICE.user_id, "B": BOB.user_id}
    assert row.uploaded_by == uploader[winner]
    assert reports[winner].record.uploaded_by == uploader[winner] and not reports[winner].superseded
    # The other admin is told the truth: superseded (and shown the newer upload that stands), or
    # stored — and replaced by the newer one afterwards.
    loser = "B" if winner == "A" else "A"
    shown = uploader[winner] if reports[loser].superseded else uploader[loser]
    assert reports[loser].record.uploaded_by == shown


def test_both_write_then_both_publish_keeps_the_newer_upload(cluster):
    """The interleaving that used to delete the document: both insert, then both clean up."""
    turns = Turns()
    replicas = cluster(turns)
    writes = ["A"] * 3 + ["B"] * 3
    schedule = ["A", "B"] + writes + ["A", "B", "A", "B"]  # allocate, write, lock, retire
    reports, winner = _race(replicas, turns, schedule, "travel.md")
    assert turns.steps == [("A", "allocate"), ("B", "allocate")] + [(r, "write") for r in writes] + [
        ("A", "lock"), ("B", "lock"), ("A", "retire"), ("B", "retire")]
    assert winner == "B"
    _check(replicas, reports, winner, "travel.md")


def test_a_late_older_upload_never_replaces_the_newer_one(cluster):
    turns = Turns()
    replicas = cluster(turns)
    # A takes its number first, then B does everything; only then does A write and publish.
    schedule = ["A", "B"] + ["B"] * 6 + ["A"] * 6
    reports, winner = _race(replicas, turns, schedule, "travel.md")
    assert winner == "B" and reports["A"].superseded
    _check(replicas, reports, winner, "travel.md")


def test_a_newer_upload_sweeping_the_older_ones_half_written_version(cluster):
    turns = Turns()
    replicas = cluster(turns)
    schedule = ["A", "A", "B"] + ["B"] * 6 + ["A"] * 6  # A wrote one chunk when B retires older versions
    reports, winner = _race(replicas, turns, schedule, "travel.md")
    assert winner == "B" and reports["A"].superseded
    _check(replicas, reports, winner, "travel.md")


_names = itertools.count()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(st.sampled_from("AB"), max_size=14))
def test_any_interleaving_ends_with_the_newer_upload_everywhere(cluster, schedule):
    turns = Turns()
    replicas = cluster(turns)
    name = f"doc-{next(_names)}.md"
    reports, winner = _race(replicas, turns, schedule, name)
    _check(replicas, reports, winner, name)
