"""Admin operations shared by Slack, Discord and the CLI: upload, list, remove, usage, caps, feedback,
coverage gaps,
per-channel settings and forgetting an uninstalled workspace.

Connectors establish *who* is acting (`Actor`) and render the results; the authorization checks
and the bookkeeping live here, once. `admin` may import `knowledge`, never `bot`: the injection
scanner is handed in as a plain callable by the core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from sqlmodel import select

from admin import channel_settings
from admin.db import Database
from admin.gaps import GapsReport, find_gaps
from admin.models import ChannelSetting, Document, UserCap
from admin.registry import DocumentRegistry, flag_reasons_json, flag_reasons_list
from admin.reports import UsageReport, build_usage_report, render_usage_chart
from admin.types import Actor, InvalidCap, NotAuthorized, NotFound
from knowledge.chunk_records import StoredVersion
from knowledge.types import WORKSPACE_WIDE, DocumentError, EmbeddedChunks, LoadedDocument, Scope, document_id

if TYPE_CHECKING:  # the knowledge base pulls in Qdrant and the embedder: not needed to type-check
    from knowledge.embeddings import Embedder
    from knowledge.ingest import KnowledgeBase, PreparedDocument

# The injection scan the core hands in: (document text, its chunks as ingest embedded them, or
# None when nothing was embedded) → the suspicious passages (empty: nothing found).
Scanner = Callable[[str, "EmbeddedChunks | None"], Sequence[str]]
# `upload_many` embeds once this many chunks (of one or more documents) are waiting.
UPLOAD_BATCH_CHUNKS = 256

log = logging.getLogger(__name__)

MAX_NAME_SUGGESTIONS = 25  # Discord's autocomplete limit
MAX_USER_CAP_USD = Decimal(1_000_000)  # beyond any real budget: a typo, not a cap


def parse_cap_usd(text: str) -> Decimal:
    """An admin's typed cap ("2.50", "$2.50", "2,50") as dollars; raises InvalidCap."""
    cleaned = text.strip().removeprefix("$").replace(",", ".").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidCap(text.strip()) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_USER_CAP_USD:
        raise InvalidCap(text.strip())
    return amount


@dataclass(frozen=True)
class UserCapRecord:
    """One user's daily cap override."""

    workspace: str
    user: str
    daily_cap_usd: float
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class ChannelSettings:
    """One channel's settings; the defaults when an admin never changed any."""

    platform: str
    workspace: str
    channel: str
    autoanswer: bool = False
    experts: str | None = None  # the platform's reference to a person or group (Slack U…/W…/S…)

    @classmethod
    def from_row(cls, row: ChannelSetting) -> "ChannelSettings":
        return cls(row.platform, row.workspace, row.channel, row.autoanswer, row.experts)


@dataclass(frozen=True)
class WorkspaceForgotten:
    """What `forget_workspace` removed."""

    workspace: str
    documents: int
    channel_settings: int


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    name: str
    title: str
    workspace: str
    channel: str  # '*' = workspace-wide
    pages: int | None
    chunks: int
    size_bytes: int
    uploaded_by: str
    uploaded_at: datetime
    flagged: bool
    flag_reasons: tuple[str, ...]
    quarantined: bool

    @property
    def scope(self) -> Scope:
        return Scope(self.workspace, self.channel)

    @property
    def is_workspace_wide(self) -> bool:
        return self.channel == WORKSPACE_WIDE

    @classmethod
    def from_row(cls, d: Document) -> "DocumentRecord":
        uploaded_at = d.uploaded_at if d.uploaded_at.tzinfo else d.uploaded_at.replace(tzinfo=timezone.utc)
        return cls(
            doc_id=d.doc_id, name=d.name, title=d.title, workspace=d.workspace, channel=d.channel,
            pages=d.pages, chunks=d.chunks, size_bytes=d.size_bytes, uploaded_by=d.uploaded_by,
            uploaded_at=uploaded_at, flagged=d.flagged, flag_reasons=flag_reasons_list(d.flag_reasons),
            quarantined=d.quarantined,
        )


@dataclass(frozen=True)
class UploadReport:
    record: DocumentRecord
    changed: bool  # False: identical content was already stored
    replaced: bool  # True: an earlier version of the same document was replaced
    findings: tuple[str, ...]  # suspicious passages found by the injection scan
    # True: a newer upload of the same document was registered while this one ran; that one is
    # stored (and is `record`), this one is not.
    superseded: bool = False

    @property
    def searchable(self) -> bool:
        return not self.record.quarantined


@dataclass(frozen=True)
class UploadItem:
    """One file of an `upload_many`: its bytes, or how to read them when its turn comes (so a
    folder is not held in memory, and an unreadable file fails alone)."""

    name: str
    data: bytes | Callable[[], bytes]
    url: str | None = None

    def read(self) -> bytes:
        return self.data if isinstance(self.data, bytes) else self.data()


@dataclass(frozen=True)
class UploadOutcome:
    """What became of one file of an `upload_many`: a report, or the error that refused it
    (a `DocumentError`, or an `OSError` reading it) — that file only."""

    name: str
    report: UploadReport | None = None
    error: Exception | None = None


@dataclass
class _PendingUpload:
    index: int
    item: UploadItem
    size_bytes: int
    prepared: PreparedDocument


class _RegistryPublisher:
    """The registry's side of publishing a version (`knowledge.ingest.VersionPublisher`): numbers
    from the shared counter, and the store flip plus the registry row in one locked step."""

    def __init__(self, registry: DocumentRegistry, row: Callable[[int, int], Document]) -> None:
        self.registry = registry
        self.row = row  # (version, chunks) → the registry row describing that version
        self.saved: Document | None = None

    def allocate(self, doc_id: str, at_least: int) -> int:
        return self.registry.allocate_version(doc_id, at_least)

    def publish(self, doc_id: str, version: int, chunks: int, go_live: Callable[[], None]) -> bool:
        with self.registry.locked(doc_id) as locked:
            current = locked.row
            if current is not None and current.version > version:
                return False  # a newer version is registered: this one never goes live
            go_live()
            row = self.row(version, chunks)
            locked.save(row)  # can't refuse: the lock keeps the newer-version check above true
        # Only now is the row committed; if that failed, the caller undoes the store flip.
        self.saved = row
        return True


def _document_text(doc) -> str:
    return "\n\n".join(section.text for section in doc.sections)


class StoreNotOpen(RuntimeError):
    """A records-only `AdminOperations` (no chunk store) was asked to change documents."""


class AdminOperations:
    """`knowledge=None` gives the records-only operations (list, usage, caps, feedback): what
    commands that must not open the chunk store — held by a running bot — can still do."""

    def __init__(
        self,
        knowledge: KnowledgeBase | None,
        db: Database,
        *,
        admin_user_ids: list[str] | tuple[str, ...] = (),
        scanner: Scanner | None = None,
        quarantine_flagged: bool = False,
        on_documents_changed: Callable[[Scope], None] | None = None,
        on_upload: Callable[[str, int], None] | None = None,
    ) -> None:
        self._knowledge = knowledge
        self.db = db
        self.registry = DocumentRegistry(db)
        self.admin_user_ids = frozenset(admin_user_ids)
        self.scanner = scanner
        self.quarantine_flagged = quarantine_flagged
        self.on_documents_changed = on_documents_changed
        # (outcome, chunks written): "ingested", "unchanged", "quarantined" or "refused" — for metrics.
        self.on_upload = on_upload

    @property
    def knowledge(self) -> KnowledgeBase:
        if self._knowledge is None:
            raise StoreNotOpen("these admin operations were opened without the chunk store")
        return self._knowledge

    def _report_upload(self, outcome: str, chunks: int = 0) -> None:
        if self.on_upload is not None:
            try:
                self.on_upload(outcome, chunks)
            except Exception:  # bookkeeping never fails an upload
                log.exception("on_upload hook failed")

    # --- who may act ----------------------------------------------------------------------
    def is_admin(self, actor: Actor) -> bool:
        return actor.is_platform_admin or actor.user_id in self.admin_user_ids

    def _require_admin(self, actor: Actor, action: str) -> None:
        if not self.is_admin(actor):
            log.info("refused %s for non-admin %s/%s", action, actor.platform, actor.user_id)
            raise NotAuthorized(action)

    def _changed(self, scope: Scope) -> None:
        if self.on_documents_changed is not None:
            try:
                self.on_documents_changed(scope)
            except Exception:  # the registry's own generation bump already invalidated the cache
                log.exception("on_documents_changed failed for %s", scope)

    # --- documents ------------------------------------------------------------------------
    def upload(self, actor: Actor, name: str, data: bytes, scope: Scope, *, url: str | None = None) -> UploadReport:
        """Load → chunk and embed → scan → publish (or quarantine) → registry. Raises
        NotAuthorized / DocumentError. One file of `upload_many`, with the same guarantees."""
        (outcome,) = self.upload_many(actor, [UploadItem(name, data, url)], scope)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.report is not None
        return outcome.report

    def upload_many(
        self,
        actor: Actor,
        items: Iterable[UploadItem],
        scope: Scope,
        *,
        on_done: Callable[[UploadOutcome], None] | None = None,
        batch_chunks: int = UPLOAD_BATCH_CHUNKS,
    ) -> list[UploadOutcome]:
        """Upload many files, their chunks embedded in model batches that span files. Raises
        NotAuthorized; a file that can't be read or loaded is that file's `UploadOutcome.error`
        and the rest go on. Returns the outcomes in the order of `items`; `on_done(outcome)` runs as
        each file is finished (a refused file at once, the others when their batch is published).

        Per file, exactly what a single upload guarantees: every step that can fail on the
        user's file (reading, loading) runs before anything is written; the document scan sees
        the chunk vectors ingest computed (nothing is embedded twice); the new version goes
        live in the store and into the registry in one step under the document's lock
        (`_RegistryPublisher`), and a row is only ever replaced by a newer version — concurrent
        uploads from several processes end with the newest one in both, the others reported
        `superseded`. An embedding or store failure raises: files already finished stay.
        """
        self._require_admin(actor, "add documents")
        scope = Scope(scope.workspace, scope.storage_channel)
        outcomes: list[UploadOutcome] = []
        pending: list[_PendingUpload] = []

        def finish(index: int, outcome: UploadOutcome) -> None:
            outcomes[index] = outcome
            if on_done is not None:
                on_done(outcome)

        def flush() -> None:
            # One embedding pass for the whole window, then each file on its own.
            self.knowledge.embed_prepared([p.prepared for p in pending])
            for p in pending:
                finish(p.index, UploadOutcome(p.item.name, self._publish_upload(actor, p, scope)))
            pending.clear()

        for index, item in enumerate(items):
            outcomes.append(UploadOutcome(item.name))  # replaced when the file is finished
            try:
                data = item.read()
                loaded = self.knowledge.load(item.name, data, url=item.url)  # DocumentError → nothing written
                doc_id = document_id(scope, loaded.name)
                if any(p.prepared.doc_id == doc_id for p in pending):
                    flush()  # the same document twice: the later upload must see the earlier one
                self.reconcile(doc_id)  # what a crashed earlier upload left must not count as stored
                prepared = self.knowledge.prepare(loaded, scope)
            except (DocumentError, OSError) as e:
                if isinstance(e, DocumentError):
                    self._report_upload("refused")
                finish(index, UploadOutcome(item.name, error=e))
                continue
            pending.append(_PendingUpload(index, item, len(data), prepared))
            if sum(len(p.prepared.chunks) for p in pending) >= batch_chunks:
                flush()
        if pending:
            flush()
        # Seal what this upload wrote (Edge: int8 copies and indexes of full segments; cheap when
        # little was written) so the searches after it don't scan an append log.
        self.knowledge.store.optimize()
        return outcomes

    def _publish_upload(self, actor: Actor, pending: _PendingUpload, scope: Scope) -> UploadReport:
        """Scan one embedded file, then publish it (or quarantine it) with its registry row."""
        prepared, url = pending.prepared, pending.item.url
        loaded: LoadedDocument = prepared.doc
        findings: tuple[str, ...] = (
            tuple(self.scanner(_document_text(loaded), prepared.embedded)) if self.scanner else ()
        )
        flagged = bool(findings)
        quarantined = flagged and self.quarantine_flagged
        doc_id = prepared.doc_id
        previous = self.registry.get(doc_id)

        def row(version: int, chunks: int) -> Document:
            return Document(
                doc_id=doc_id, workspace=scope.workspace, channel=scope.storage_channel, name=loaded.name,
                title=loaded.title, pages=loaded.pages, chunks=chunks, size_bytes=pending.size_bytes,
                content_hash=loaded.content_hash, uploaded_by=actor.user_id,
                uploaded_at=datetime.now(timezone.utc), flagged=flagged,
                flag_reasons=flag_reasons_json(findings), quarantined=quarantined, url=url, version=version,
            )

        publisher = _RegistryPublisher(self.registry, row)
        if quarantined:
            # Registered and reported, never searchable: an older clean version must go too,
            # or answers would keep citing a document the admin now sees as quarantined.
            removed = self.knowledge.withdraw(doc_id, publisher)
            changed, replaced = True, bool(removed) or previous is not None
            log.warning("quarantined %s in %s: %d suspicious passage(s)", loaded.name, scope, len(findings))
        else:
            result = self.knowledge.publish_prepared(prepared, publisher)
            changed, replaced = result.changed, result.replaced
            if flagged:
                log.warning("flagged %s in %s: %d suspicious passage(s)", loaded.name, scope, len(findings))
            if not changed:
                if (previous is not None and previous.content_hash == loaded.content_hash
                        and previous.quarantined == quarantined and previous.flagged == flagged):
                    # Same bytes as before: nothing to write, and cached answers stay valid.
                    self._report_upload("unchanged")
                    return UploadReport(DocumentRecord.from_row(previous), changed=False, replaced=False,
                                        findings=findings)
                # The store already holds these bytes but the row differs (another verdict of the
                # scanner, or no row at all): describe the live version again.
                live = self.knowledge.store.live_version(doc_id)
                if live is not None:
                    publisher.publish(doc_id, live.version, live.chunks, lambda: None)

        saved = publisher.saved
        if saved is None:  # a newer upload of this document was registered first: it stays
            current = self.registry.get(doc_id)
            if current is None:
                raise NotFound(f"“{loaded.name}”: a concurrent change removed it")
            log.info("upload of %s (%s) by %s superseded by a newer one", loaded.name, doc_id, actor.user_id)
            return UploadReport(DocumentRecord.from_row(current), changed=changed, replaced=replaced,
                                findings=findings, superseded=True)
        self._changed(scope)
        self._report_upload("quarantined" if quarantined else "ingested" if changed else "unchanged",
                            saved.chunks if changed and not quarantined else 0)
        log.info("document %s (%s) in %s by %s: %d chunks, changed=%s", loaded.name, doc_id, scope,
                 actor.user_id, saved.chunks, changed)
        return UploadReport(DocumentRecord.from_row(saved), changed=changed, replaced=replaced or
                            (previous is not None and changed), findings=findings)

    def reconcile(self, doc_id: str | None = None) -> int:
        """Bring store and registry back in step after a crash (of one document, or of all);
        returns how many store versions it removed. Run at start-up and before every upload.

        Per document, under its lock (so no upload is half-way through publishing):
        - the live version the registry row describes stays (none for a quarantined row, none
          without a row);
        - every other live version the registry numbered is removed: what an upload left that
          crashed between the store flip and the registry write (or before retiring the older
          version), or a removal that crashed between deleting the row and the chunks;
        - live chunks the registry never numbered (a store older than this database) are only
          logged: deleting them could lose documents nobody can re-upload.
        Pending chunks are the store's to sweep (see `knowledge.store`).
        """
        store = self.knowledge.store
        by_doc: dict[str, list[StoredVersion]] = {}
        for v in store.versions(doc_id):
            if v.live:
                by_doc.setdefault(v.doc_id, []).append(v)
        removed: list[StoredVersion] = []
        for d, live in by_doc.items():
            row = self.registry.get(d)
            if row is not None and not row.quarantined and all(v.version == row.version for v in live):
                continue  # in step (the common case): no lock needed
            with self.registry.locked(d) as locked:
                row = locked.row
                expected = row.version if row is not None and not row.quarantined else None
                for v in store.versions(d):
                    if not v.live or v.version == expected:
                        continue
                    if 0 < v.version <= locked.last_version or (v.version == 0 and row is not None):
                        store.discard(d, v.version)
                        removed.append(v)
                        log.warning("reconcile: removed version %d of %s (not the registered one)", v.version, d)
                    else:
                        log.warning("reconcile: %s has live chunks the registry never numbered", d)
        for v in removed:  # outside the lock: the callback may write to the database itself
            self._changed(v.scope)
        return len(removed)

    def list_documents(self, scope: Scope, *, include_workspace: bool = True) -> list[DocumentRecord]:
        return [DocumentRecord.from_row(d) for d in self.registry.in_scope(scope, include_workspace=include_workspace)]

    def _find(self, scope: Scope, name: str) -> Document | None:
        """By exact doc id in the scope, then name, then title (case-insensitive), then unique prefix."""
        wanted = name.strip()
        exact = self.registry.get(document_id(Scope(scope.workspace, scope.storage_channel), wanted))
        if exact is not None:
            return exact
        candidates = self.registry.in_scope(scope, include_workspace=False)
        if not scope.is_workspace_wide:
            # A channel admin may also remove a workspace-wide document by naming it from the channel.
            candidates += self.registry.in_scope(Scope.workspace_wide(scope.workspace), include_workspace=False)
        low = wanted.casefold()
        for matches in (
            [d for d in candidates if d.doc_id == wanted],
            [d for d in candidates if d.name.casefold() == low],
            [d for d in candidates if d.title.casefold() == low],
        ):
            if matches:
                return matches[0]
        prefixed = [d for d in candidates if d.name.casefold().startswith(low)]
        return prefixed[0] if len(prefixed) == 1 else None

    def remove(self, actor: Actor, scope: Scope, name: str) -> DocumentRecord:
        self._require_admin(actor, "remove documents")
        doc = self._find(scope, name)
        if doc is None:
            raise NotFound(f"a document called “{name}” here")
        doc_scope = Scope(doc.workspace, doc.channel)
        # The row goes first: a crash after it leaves chunks without a row, which `reconcile`
        # removes; the other order could leave a row whose chunks are gone.
        with self.registry.locked(doc.doc_id) as locked:
            doc = locked.delete()
        if doc is None:
            raise NotFound(f"a document called “{name}” here")
        # Only up to the removed version: an upload that went live meanwhile stays.
        self.knowledge.remove(doc_scope, doc.name, through_version=doc.version)
        self._changed(doc_scope)
        log.info("removed %s (%s) from %s by %s", doc.name, doc.doc_id, doc_scope, actor.user_id)
        return DocumentRecord.from_row(doc)

    def document_names(self, scope: Scope, prefix: str = "") -> list[str]:
        low = prefix.casefold()
        names = sorted({d.name for d in self.registry.in_scope(scope) if d.name.casefold().startswith(low)},
                       key=str.casefold)
        return names[:MAX_NAME_SUGGESTIONS]

    # --- usage & caps -----------------------------------------------------------------------
    def usage(self, actor: Actor, workspace: str, *, user: str | None = None, channel: str | None = None,
              days: int = 30) -> UsageReport:
        """Everyone may see their own usage; only admins may see anyone else's or the whole workspace's."""
        if not self.is_admin(actor):
            if user is None:
                user = actor.user_id
            elif user != actor.user_id:
                raise NotAuthorized("see other people's usage")
        return build_usage_report(self.db, workspace, user=user, channel=channel, days=days)

    def usage_chart(self, actor: Actor, workspace: str, *, days: int = 30, user: str | None = None,
                    channel: str | None = None) -> bytes:
        return render_usage_chart(self.usage(actor, workspace, user=user, channel=channel, days=days))

    def set_user_cap(self, actor: Actor, workspace: str, user: str, daily_cap_usd: float | Decimal | None) -> None:
        """Override one user's daily cap (None restores the default). Takes effect on the next
        question. Raises NotAuthorized, or InvalidCap for a negative or absurd amount."""
        self._require_admin(actor, "change spending caps")
        if daily_cap_usd is not None:
            amount = Decimal(str(daily_cap_usd))
            if not amount.is_finite() or amount < 0 or amount > MAX_USER_CAP_USD:
                raise InvalidCap(str(daily_cap_usd))
        self.registry.set_user_cap(workspace, user, daily_cap_usd, set_by=actor.user_id)
        log.info("daily cap for %s/%s set to %s by %s", workspace, user, daily_cap_usd, actor.user_id)

    def user_caps(self, actor: Actor, workspace: str) -> list[UserCapRecord]:
        """Every per-user override in `workspace`, by user (admins only)."""
        self._require_admin(actor, "see spending caps")
        with self.db.session() as session:
            rows = session.exec(select(UserCap).where(UserCap.workspace == workspace).order_by(UserCap.user)).all()
            return [
                UserCapRecord(r.workspace, r.user, r.daily_cap_usd, r.set_by,
                              r.set_at if r.set_at.tzinfo else r.set_at.replace(tzinfo=timezone.utc))
                for r in rows
            ]

    def record_feedback(self, request_id: str, user: str, helpful: bool, comment: str | None = None, *,
                        at: datetime | None = None) -> None:
        """One user's 👍/👎 on an answer; `comment` (with a 👎) must already be PII-redacted. With
        `at` (when the user clicked), a click older than the one stored is ignored, so the latest
        click per user counts even when two arrive out of order."""
        self.registry.record_feedback(request_id, user, helpful, comment, at=at)

    def gaps(self, actor: Actor, workspace: str, *, embedder: "Embedder", days: int = 30,
             channel: str | None = None) -> GapsReport:
        """Questions docent abstained on or that got 👎, grouped by meaning (admins only: the
        report names who asked). `embedder` is the bot's (`Docent.embedder`)."""
        self._require_admin(actor, "see coverage gaps")
        return find_gaps(self.db, embedder, workspace, days=days, channel=channel)

    # --- per-channel settings ----------------------------------------------------------------
    def channel_settings(self, platform: str, workspace: str, channel: str) -> ChannelSettings:
        """Anyone's read (connectors consult it for every message in the channel)."""
        row = channel_settings.get(self.db, platform, workspace, channel)
        return ChannelSettings.from_row(row) if row is not None else ChannelSettings(platform, workspace, channel)

    def set_autoanswer(self, actor: Actor, channel: str, on: bool) -> ChannelSettings:
        """Turn answering top-level questions without a mention on or off in `channel` (admins only)."""
        self._require_admin(actor, "change a channel's auto-answer setting")
        row = channel_settings.update(self.db, actor.platform, actor.workspace, channel, by=actor.user_id, autoanswer=on)
        log.info("auto-answer %s in %s/%s by %s", "on" if on else "off", actor.workspace, channel, actor.user_id)
        return ChannelSettings.from_row(row)

    def set_experts(self, actor: Actor, channel: str, experts: str | None) -> ChannelSettings:
        """Who docent names when it can't answer in `channel` (None: nobody). Admins only; the
        connector validates `experts` as its platform's reference to a person or group."""
        self._require_admin(actor, "change a channel's experts")
        row = channel_settings.update(self.db, actor.platform, actor.workspace, channel, by=actor.user_id,
                                      experts=experts)
        log.info("experts in %s/%s set to %s by %s", actor.workspace, channel, experts, actor.user_id)
        return ChannelSettings.from_row(row)

    def channel_settings_in(self, actor: Actor) -> list[ChannelSettings]:
        """Every channel of the actor's workspace with settings (admins only)."""
        self._require_admin(actor, "see channel settings")
        return [ChannelSettings.from_row(r) for r in channel_settings.in_workspace(self.db, actor.platform,
                                                                                  actor.workspace)]

    # --- uninstall ---------------------------------------------------------------------------
    def forget_workspace(self, actor: Actor, workspace: str) -> WorkspaceForgotten:
        """Remove every document of `workspace` (store and registry) and its channel settings —
        what happens when the platform says docent was uninstalled there. The usage ledger and
        feedback stay: they hold no document text, and costs must still add up."""
        self._require_admin(actor, "remove a workspace's documents")
        with self.db.session() as session:
            docs = list(session.execute(select(Document).where(Document.workspace == workspace)).scalars())
        removed = 0
        for doc in docs:
            with self.registry.locked(doc.doc_id) as locked:
                row = locked.delete()
            if row is None:
                continue  # removed meanwhile
            doc_scope = Scope(row.workspace, row.channel)
            self.knowledge.remove(doc_scope, row.name, through_version=row.version)
            self._changed(doc_scope)
            removed += 1
        settings_removed = channel_settings.delete_workspace(self.db, actor.platform, workspace)
        log.warning("forgot workspace %s/%s for %s: %d documents, %d channel settings", actor.platform, workspace,
                    actor.user_id, removed, settings_removed)
        return WorkspaceForgotten(workspace, removed, settings_removed)
