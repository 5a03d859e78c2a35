"""Data that crosses the knowledge room's boundary: scopes, chunks, hits, document errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# The channel value stored on workspace-wide documents. Never a real channel id on any platform.
WORKSPACE_WIDE = "*"


@dataclass(frozen=True)
class Scope:
    """Where a document lives, or what an asker may see.

    As a document's scope: `channel` is a channel id, or WORKSPACE_WIDE.
    As an asker's scope: the store returns chunks of `workspace` whose channel is `channel`
    or WORKSPACE_WIDE; `channel=None` (a DM) sees workspace-wide documents only.
    """

    workspace: str
    channel: str | None = None

    def __post_init__(self) -> None:
        if not self.workspace:
            raise ValueError("a scope needs a workspace")

    @classmethod
    def workspace_wide(cls, workspace: str) -> "Scope":
        return cls(workspace, WORKSPACE_WIDE)

    @property
    def is_workspace_wide(self) -> bool:
        return self.channel in (None, WORKSPACE_WIDE)

    @property
    def visible_channels(self) -> tuple[str, ...]:
        """Channel values an asker in this scope may read."""
        if self.channel in (None, WORKSPACE_WIDE):
            return (WORKSPACE_WIDE,)
        return (self.channel, WORKSPACE_WIDE)

    @property
    def storage_channel(self) -> str:
        return self.channel or WORKSPACE_WIDE

    def __str__(self) -> str:
        return f"{self.workspace}/{self.storage_channel}"

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """'workspace' → workspace-wide; 'workspace/channel' → that channel."""
        workspace, _, channel = text.partition("/")
        return cls(workspace, channel or WORKSPACE_WIDE)


def document_id(scope: Scope, name: str) -> str:
    """Stable id of a document: the same name in the same scope is the same document."""
    key = f"{scope.workspace}\x1f{scope.storage_channel}\x1f{name}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Section:
    """A run of text from a loaded document with where it came from."""

    text: str
    page: int | None = None  # 1-based; None for formats without pages
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedDocument:
    name: str  # source name, e.g. the file name
    title: str
    sections: tuple[Section, ...]
    content_hash: str  # sha256 of the raw bytes
    pages: int | None = None
    url: str | None = None
    # Things the user should know that didn't stop loading, e.g. pages without extractable text.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit, with everything needed to cite it."""

    doc_id: str
    title: str
    source: str
    text: str
    chunk_index: int
    page: int | None
    heading_path: tuple[str, ...]
    scope: Scope
    content_hash: str  # of the whole document: ties the chunk to one document version
    ingested_at: float
    url: str | None = None

    @property
    def section(self) -> str:
        return " › ".join(self.heading_path)

    def payload(self) -> dict:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "text": self.text,
            "chunk_index": self.chunk_index,
            "page": self.page,
            "heading_path": list(self.heading_path),
            "workspace": self.scope.workspace,
            "channel": self.scope.storage_channel,
            "content_hash": self.content_hash,
            "ingested_at": self.ingested_at,
            "url": self.url,
        }

    @classmethod
    def from_payload(cls, p: dict) -> "Chunk":
        return cls(
            doc_id=p["doc_id"],
            title=p["title"],
            source=p["source"],
            text=p["text"],
            chunk_index=int(p["chunk_index"]),
            page=p.get("page"),
            heading_path=tuple(p.get("heading_path") or ()),
            scope=Scope(p["workspace"], p["channel"]),
            content_hash=p["content_hash"],
            ingested_at=float(p["ingested_at"]),
            url=p.get("url"),
        )


@dataclass(frozen=True)
class EmbeddedChunks:
    """A document's chunks as ingest embeds them (`embedding_text` of each, and its vector):
    handed to the document scan so it compares with vectors ingest computes anyway instead of
    embedding the document a second time."""

    texts: tuple[str, ...]
    vectors: Any  # np.ndarray (len(texts), dim), L2-normalised
    vector_space: str  # the embedder's `vector_space`: vectors of another space are not comparable


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused rank score and its dense cosine similarity."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    sparse_score: float | None = None


@dataclass(frozen=True)
class IngestResult:
    doc_id: str
    name: str
    title: str
    scope: Scope
    pages: int | None
    chunks: int
    content_hash: str
    changed: bool  # False when identical content was already stored (nothing written)
    replaced: bool = False  # True when an earlier version was replaced
    warnings: tuple[str, ...] = field(default=())


class DocumentError(Exception):
    """A file a user gave us can't be ingested. The message is safe to show to that user."""

    reason = "can't be read"

    def __init__(self, name: str, detail: str | None = None):
        self.name = name
        self.detail = detail or self.reason
        super().__init__(f"{name}: {self.detail}")

    def __reduce__(self):  # pickle as (name, detail): PDFs are parsed in a worker process
        return type(self), (self.name, self.detail)


class UnsupportedDocument(DocumentError):
    reason = "unsupported file type (PDF, DOCX, TXT, Markdown or HTML)"


class EmptyDocument(DocumentError):
    reason = "the file has no text"


class EncryptedDocument(DocumentError):
    reason = "the PDF is password-protected"


class CorruptDocument(DocumentError):
    reason = "the file is damaged or not what its name says"


class OversizedDocument(DocumentError):
    reason = "the file is too large"
