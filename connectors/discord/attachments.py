"""Fetching a document an admin attached, refusing what can't be ingested before downloading it."""

from __future__ import annotations

import asyncio
from pathlib import PurePath

import aiohttp
import discord

from knowledge.loaders import SUPPORTED_EXTENSIONS
from knowledge.types import DocumentError, EmptyDocument, OversizedDocument, UnsupportedDocument

DOWNLOAD_TIMEOUT_S = 60.0


class DownloadFailed(DocumentError):
    reason = "I couldn't download the file from Discord — please try again"


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.1f}"


def precheck(attachment: discord.Attachment, max_bytes: int) -> None:
    """What we can tell from Discord's metadata alone: size and extension (raises DocumentError)."""
    name = attachment.filename
    if attachment.size > max_bytes:
        raise OversizedDocument(name, f"the file is {_mb(attachment.size)} MB; the limit is {_mb(max_bytes)} MB")
    ext = PurePath(name).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        what = f"'{ext}' files aren't supported" if ext else "the file has no extension"
        raise UnsupportedDocument(name, f"{what}; send PDF, DOCX, TXT, Markdown or HTML")
    if attachment.size == 0:
        raise EmptyDocument(name)


async def download(attachment: discord.Attachment, max_bytes: int) -> bytes:
    """The attachment's bytes, after `precheck`; a failed or oversized download raises DocumentError."""
    precheck(attachment, max_bytes)
    try:
        data = await asyncio.wait_for(attachment.read(), DOWNLOAD_TIMEOUT_S)
    except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise DownloadFailed(attachment.filename) from exc
    if len(data) > max_bytes:  # Discord's size was wrong: still never ingest more than the limit
        raise OversizedDocument(attachment.filename, f"the file is {_mb(len(data))} MB; the limit is {_mb(max_bytes)} MB")
    if not data.strip():
        raise EmptyDocument(attachment.filename)
    return data
