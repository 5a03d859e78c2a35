"""Fetching a file someone shared in Slack, with docent's own token, never more than the size cap."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024


class FileFetchError(Exception):
    """A shared file couldn't be fetched; the message is safe to show to the uploader."""


@dataclass(frozen=True)
class SlackFile:
    id: str
    name: str
    size: int
    mimetype: str | None
    download_url: str | None
    permalink: str | None

    @classmethod
    def from_api(cls, f: dict) -> "SlackFile":
        return cls(
            id=f.get("id", ""),
            name=f.get("name") or f.get("title") or f.get("id", "file"),
            size=int(f.get("size") or 0),
            mimetype=f.get("mimetype"),
            download_url=f.get("url_private_download") or f.get("url_private"),
            permalink=f.get("permalink"),
        )


def _token_may_go_to(url: str, api_url: str) -> bool:
    """Send the bot token only to Slack's own hosts (or the configured API host, e.g. a test server)."""
    host = (urlparse(url).hostname or "").lower()
    api_host = (urlparse(api_url).hostname or "").lower()
    return host == api_host or host.endswith((".slack.com", ".slack-gov.com")) or host in ("slack.com", "slack-gov.com")


def fetch_file(client: WebClient, file_id: str, *, max_bytes: int, timeout_s: float = 60.0) -> tuple[SlackFile, bytes]:
    """files.info, then download `url_private_download` with the bot token; size-checked twice:
    from the metadata before downloading, and while reading (metadata can lie)."""
    try:
        info = client.files_info(file=file_id)
    except Exception as err:
        reason = err.response.get("error") if isinstance(err, SlackApiError) else type(err).__name__
        log.warning("files.info failed for %s: %s", file_id, reason)
        raise FileFetchError("I couldn't look up that file (is docent allowed to read files here?).") from None
    meta = SlackFile.from_api(info["file"])
    limit_mb = max_bytes / (1024 * 1024)
    if meta.size > max_bytes:
        raise FileFetchError(f"{meta.name} is {meta.size / (1024 * 1024):.1f} MB; the limit is {limit_mb:g} MB.")
    if not meta.download_url:
        raise FileFetchError(f"{meta.name} has no downloadable content (is it an external link?).")
    if not _token_may_go_to(meta.download_url, client.base_url):
        raise FileFetchError(f"{meta.name} is hosted outside Slack; I only download files shared in Slack.")
    request = urllib.request.Request(meta.download_url, headers={"Authorization": f"Bearer {client.token}"})
    opener = urllib.request.build_opener(_TokenSafeRedirects(client.base_url))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            content_type = response.headers.get("Content-Type", "")
            chunks: list[bytes] = []
            total = 0
            while chunk := response.read(READ_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise FileFetchError(f"{meta.name} is larger than the {limit_mb:g} MB limit.")
                chunks.append(chunk)
    except urllib.error.URLError as err:
        log.warning("download of file %s failed: %s", file_id, getattr(err, "reason", err))
        raise FileFetchError(f"I couldn't download {meta.name} from Slack; please try again.") from None
    data = b"".join(chunks)
    # Slack answers a download without the right token/scope with its HTML sign-in page.
    expects_html = (meta.mimetype or "").startswith("text/html") or meta.name.lower().endswith((".html", ".htm"))
    if content_type.startswith("text/html") and not expects_html:
        raise FileFetchError(
            f"Slack didn't let me download {meta.name} (docent needs the files:read scope)."
        )
    return meta, data


class _TokenSafeRedirects(urllib.request.HTTPRedirectHandler):
    """urllib copies every header, Authorization included, onto a redirect: drop the bot token
    whenever a hop leads somewhere the token may not go."""

    def __init__(self, api_base_url: str):
        super().__init__()
        self._api_base_url = api_base_url

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and not _token_may_go_to(newurl, self._api_base_url):
            new.remove_header("Authorization")
        return new
