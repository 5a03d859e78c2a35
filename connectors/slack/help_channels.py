"""Help channels and who to ask instead: per-channel settings as the Slack connector reads them.

The settings are `AdminOperations`' durable rows (auto-answer on/off, experts); every channel
message may need them, so they are kept here for `CACHE_S` (a change made through this process
is seen at once; one made through another replica within `CACHE_S`).

Auto-answer speaks only when the core answered *and* its calibrated answerability score is at
least `min_score`: by default halfway between the gate's own threshold and certainty, so a help
channel hears docent only when it is sure — and never an "I don't know".
"""

from __future__ import annotations

import re
import threading
import time

from admin.operations import ChannelSettings
from bot.types import Answer, Outcome
from connectors.slack.blocks import SLACK_USER, SLACK_USER_GROUP

CACHE_S = 30.0
PLATFORM = "slack"

# How a slash command (should_escape) delivers `@someone` and `@group`.
_USER_REF = re.compile(r"<@(?P<id>[UW][A-Z0-9]+)(?:\|[^>]*)?>")
_GROUP_REF = re.compile(r"<!subteam\^(?P<id>S[A-Z0-9]+)(?:\|[^>]*)?>")


def parse_expert(text: str) -> str | None:
    """The one person or user group named in `text` (`<@U…>`, `<!subteam^S…>` or a bare id), else None."""
    text = text.strip()
    if SLACK_USER.fullmatch(text) or SLACK_USER_GROUP.fullmatch(text):
        return text
    refs = [m.group("id") for m in _USER_REF.finditer(text)] + [m.group("id") for m in _GROUP_REF.finditer(text)]
    rest = _GROUP_REF.sub("", _USER_REF.sub("", text)).strip()
    return refs[0] if len(refs) == 1 and not rest else None


def autoanswer_min_score(settings, gate_threshold: float) -> float:
    if settings.slack_autoanswer_min_score is not None:
        return settings.slack_autoanswer_min_score
    return gate_threshold + (1.0 - gate_threshold) / 2


def sure_enough(answer: Answer, min_score: float) -> bool:
    """Whether an auto-answer may be posted (else docent says nothing at all)."""
    return (answer.outcome is Outcome.answered and bool(answer.sources)
            and answer.answerability is not None and answer.answerability >= min_score)


class ChannelSettingsCache:
    def __init__(self, admin, *, ttl_s: float = CACHE_S) -> None:
        self._admin = admin
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, ChannelSettings]] = {}
        self._lock = threading.Lock()

    def get(self, team: str, channel: str) -> ChannelSettings:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((team, channel))
        if hit and now - hit[0] < self._ttl_s:
            return hit[1]
        found = self._admin.channel_settings(PLATFORM, team, channel)
        with self._lock:
            self._cache[(team, channel)] = (now, found)
        return found

    def changed(self, found: ChannelSettings) -> None:
        with self._lock:
            self._cache[(found.workspace, found.channel)] = (time.monotonic(), found)

    def forget_workspace(self, team: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == team]:
                del self._cache[key]
