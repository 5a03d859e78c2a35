"""The Web API client for each workspace docent serves.

One workspace (`SLACK_BOT_TOKEN`): the one client, whatever the team. Several (Bolt's OAuth
flow): the newest bot token the workspace's installation holds, looked up in docent's database
and kept a few minutes, so a workspace that reinstalled (new token) or uninstalled (`forget`) is
noticed. Each client comes in two kinds: the retrying one (answers, admin replies) and a quick
one without retries (progress edits and stream appends, which must never wait out a 429).
"""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import InstallationStore

from connectors.slack.replies import without_retries

TOKEN_CACHE_S = 300.0


class NotInstalled(LookupError):
    """No installation (bot token) for this workspace."""


class SlackClients:
    def __init__(self, client: WebClient, *, installations: InstallationStore | None = None,
                 make_client=None) -> None:
        self._default = client  # the single-token client, or the token-less base of OAuth mode
        self._installations = installations
        self._make_client = make_client
        self._cache: dict[str, tuple[float, WebClient, WebClient]] = {}
        self._lock = threading.Lock()
        self._quick_default = without_retries(client) if installations is None else None

    @property
    def distributed(self) -> bool:
        return self._installations is not None

    @property
    def installations(self) -> InstallationStore | None:
        return self._installations

    def _pair(self, team: str) -> tuple[WebClient, WebClient]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(team)
        if hit and now - hit[0] < TOKEN_CACHE_S:
            return hit[1], hit[2]
        bot = self._installations.find_bot(enterprise_id=None, team_id=team)  # type: ignore[union-attr]
        if bot is None or not bot.bot_token:
            raise NotInstalled(team)
        client = self._make_client(bot.bot_token)
        pair = (client, without_retries(client))
        with self._lock:
            self._cache[team] = (now, *pair)
        return pair

    def for_team(self, team: str) -> WebClient:
        """The retrying client of `team` (raises NotInstalled in OAuth mode without a token)."""
        if self._installations is None:
            return self._default
        return self._pair(team)[0]

    def quick(self, team: str) -> WebClient:
        """The same token without retry handlers."""
        if self._installations is None:
            return self._quick_default  # type: ignore[return-value]
        return self._pair(team)[1]

    def forget(self, team: str) -> None:
        with self._lock:
            self._cache.pop(team, None)
