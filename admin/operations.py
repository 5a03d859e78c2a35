"""Admin operations shared by Slack, Discord and the CLI: upload, list, remove, usage, caps, feedback.

Connectors establish *who* is acting (`Actor`) and render the results; the authorization checks
and the bookkeeping live here, once. `admin` may import `knowledge`, never `bot`: the injection
scanner is handed in as a plain callable by the core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from admin.db import Database
from admin.models import Document
from admin.registry import DocumentRegistry, flag_reasons_json, flag_reasons_list
from admin.reports import UsageReport, build_usage_report, render_cost_chart
from admin.types import Actor, NotAuthorized, NotFound
from knowledge.types import WORKSPACE_WIDE, DocumentError, Scope, document_id

if TYPE_CHECKING:  # the knowledge base pulls in Qdrant and the embedder: not needed to type-check
    from knowledge.ingest import KnowledgeBase

log = logging.getLogger(__name__)

MAX_NAME_SUGGESTIONS = 25  # Discord's autocomplete limit


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

    @property
    def searchable(self) -> bool:
        return not self.record.quarantined


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
        scanner: Callable[[str], list[str]] | None = None,
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
        """Load → scan → ingest (unless quarantined) → registry. Raises NotAuthorized / DocumentError.

        Every step that can fail on the user's file (loading) runs before anything is written.
        """
        self._require_admin(actor, "add documents")
        scope = Scope(scope.workspace, scope.storage_channel)
        try:
            loaded = self.knowledge.load(name, data, url=url)  # DocumentError → nothing written
        except DocumentError:
            self._report_upload("refused")
            raise
        findings: tuple[str, ...] = tuple(self.scanner(_document_text(loaded))) if self.scanner else ()
        flagged = bool(findings)
        quarantined = flagged and self.quarantine_flagged
        doc_id = document_id(scope, loaded.name)
        previous = self.registry.get(doc_id)

        if quarantined:
            # Registered and reported, never searchable: an older clean version must go too,
            # or answers would keep citing a document the admin now sees as quarantined.
            removed = self.knowledge.remove(scope, loaded.name)
            changed, replaced, chunks = True, bool(removed) or previous is not None, 0
            log.warning("quarantined %s in %s: %d suspicious passage(s)", loaded.name, scope, len(findings))
        else:
            result = self.knowledge.ingest_loaded(loaded, scope)
            changed, replaced, chunks = result.changed, result.replaced, result.chunks
            if flagged:
                log.warning("flagged %s in %s: %d suspicious passage(s)", loaded.name, scope, len(findings))

        if (not changed and previous is not None and previous.content_hash == loaded.content_hash
                and previous.quarantined == quarantined and previous.flagged == flagged):
            # Same bytes as before: nothing to write, and cached answers stay valid.
            self._report_upload("unchanged")
            return UploadReport(DocumentRecord.from_row(previous), changed=False, replaced=False, findings=findings)

        row = Document(
            doc_id=doc_id, workspace=scope.workspace, channel=scope.storage_channel, name=loaded.name,
            title=loaded.title, pages=loaded.pages, chunks=chunks, size_bytes=len(data),
            content_hash=loaded.content_hash, uploaded_by=actor.user_id,
            uploaded_at=datetime.now(timezone.utc), flagged=flagged,
            flag_reasons=flag_reasons_json(findings), quarantined=quarantined, url=url,
        )
        try:
            saved = self.registry.save(row)
        except Exception:
            # Keep store and registry in step: a new document that can't be registered is removed.
            if previous is None and not quarantined:
                try:
                    self.knowledge.remove(scope, loaded.name)
                except Exception:
                    log.exception("could not undo ingest of %s after a registry failure", doc_id)
            raise
        self._changed(scope)
        self._report_upload("quarantined" if quarantined else "ingested" if changed else "unchanged",
                            chunks if changed and not quarantined else 0)
        log.info("document %s (%s) in %s by %s: %d chunks, changed=%s", loaded.name, doc_id, scope,
                 actor.user_id, chunks, changed)
        return UploadReport(DocumentRecord.from_row(saved), changed=changed, replaced=replaced or
                            (previous is not None and changed), findings=findings)

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
        self.knowledge.remove(doc_scope, doc.name)
        self.registry.delete(doc.doc_id)
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
        return render_cost_chart(self.usage(actor, workspace, user=user, channel=channel, days=days))

    def set_user_cap(self, actor: Actor, workspace: str, user: str, daily_cap_usd: float | None) -> None:
        """Override one user's daily cap (None restores the default). Takes effect on the next question."""
        self._require_admin(actor, "change spending caps")
        if daily_cap_usd is not None and daily_cap_usd < 0:
            raise ValueError("a daily cap can't be negative")
        self.registry.set_user_cap(workspace, user, daily_cap_usd, set_by=actor.user_id)
        log.info("daily cap for %s/%s set to %s by %s", workspace, user, daily_cap_usd, actor.user_id)

    def record_feedback(self, request_id: str, user: str, helpful: bool) -> None:
        self.registry.record_feedback(request_id, user, helpful)
