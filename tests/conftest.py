"""Shared fixtures.

Real services: tests that need Redis or Postgres take the `redis_url` / `postgres_url`
fixtures. On a laptop without them those tests skip with a reason; in CI (CI=true) a missing
service is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

# The loopback fakes' fixtures, for every test (tests never import fixtures from each other).
from tests.fakes.anthropic_server import fake_anthropic  # noqa: E402, F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT = Path(__file__).resolve().parents[1]
SHARED = (PROJECT / ".." / "shared").resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> bool:
    u = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 0), timeout=1):
            return True
    except OSError:
        return False


def _need_service(name: str, url: str) -> str:
    if _reachable(url):
        return url
    msg = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{msg} (CI must provide it)")
    pytest.skip(f"{msg}; start it or set the URL to run this test")


class StoreFailure(RuntimeError):
    """What `FailingBackend` raises: the store going away mid-write."""


class FailingBackend:
    """A real backend that raises `StoreFailure` on its `fail_on`-th call of `verb` (before
    doing it); every other call goes through."""

    def __init__(self, inner, verb: str, fail_on: int):
        self.inner, self.verb, self.fail_on = inner, verb, fail_on
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.verb:
            return attr

        def maybe_fail(*args):
            self.calls += 1
            if self.calls == self.fail_on:
                raise StoreFailure(f"{name} #{self.calls} failed")
            return attr(*args)

        return maybe_fail


@pytest.fixture
def small_batches(monkeypatch):
    """One point per upsert, so even a two-chunk document takes several writes."""
    monkeypatch.setattr("knowledge.store.UPSERT_BATCH", 1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared material not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _need_service("Redis", os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not url.startswith("postgresql"):
        url = DEFAULT_DATABASE_URL
    return _need_service("Postgres", url)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Embedded-mode settings in a temporary data dir, fast hash embedder, no keys, no servers."""
    for var in (
        "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "REDIS_URL", "DATABASE_URL", "QDRANT_URL",
        "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    from bot.settings import Settings

    # The hash embedder's cosines run lower than MiniLM's; 0.30 is its equivalent of the
    # calibrated MiniLM default.
    return Settings(data_dir=tmp_path / "data", embedder="hash", relevance_threshold=0.30, _env_file=None)
