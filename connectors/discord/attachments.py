"""Fetching a document an admin attached, refusing what can't be ingested before downloading it.

The size Discord reports is only a claim: the download is streamed and stopped as soon as it
passes the limit, so a file that lies about its size never sits in memory whole.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePath

import aiohttp
import discord

from knowledge.loaders import SUPPORTED_EXTENSIONS
from knowledge.types import DocumentError, EmptyDocument, OversizedDocument, UnsupportedDocument

DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK_BYTES = 64 * 1024


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
        data = await asyncio.wait_for(_read_at_most(attachment, max_bytes), DOWNLOAD_TIMEOUT_S)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise DownloadFailed(attachment.filename) from exc
    if not data.strip():
        raise EmptyDocument(attachment.filename)
    return data


async def _read_at_most(attachment: discord.Attachment, max_bytes: int) -> bytes:
    """GET the attachment's URL (as `Attachment.read` does), refusing it once past `max_bytes`."""
    too_large = OversizedDocument(attachment.filename, f"the file is over the limit of {_mb(max_bytes)} MB")
    async with aiohttp.ClientSession() as session, session.get(attachment.url) as response:
        if response.status != 200:
            raise DownloadFailed(attachment.filename)
        if response.content_length is not None and response.content_length > max_bytes:
            raise too_large
        data = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            data += chunk
            if len(data) > max_bytes:
                raise too_large  # leaving the block closes the connection: the rest is never read
        return bytes(data)
