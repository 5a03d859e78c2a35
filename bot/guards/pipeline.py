"""The guard pipeline every question passes before a model call, and the bookkeeping after it.

Order (cheapest refusal first, money last): normalize → rate limits → injection check
(block / warn / log per `settings.injection_action`) → budget reservation of the worst-case cost.
After the call: settle the reservation to the actual cost (or release it), store the answer in
the response cache, and write one ledger row per request whatever its outcome.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from admin.db import Database
from admin.ledger import LedgerEntry, UsageLedger
from admin.registry import DocumentRegistry
from bot.guards.budget import CostBudget, Reservation
from bot.guards.cache import ResponseCache, cache_key
from bot.guards.injection import BLOCKING_LEVEL, Verdict, default_detector
from bot.guards.normalize import normalize_text
from bot.guards.ratelimit import RateLimiter
from bot.types import Answer, InjectionBlocked, Outcome, Question, Usage
from knowledge.types import Scope

log = logging.getLogger(__name__)

INJECTION_WARNING = (
    "⚠️ Parts of this question look like an attempt to change docent's instructions; "
    "they were treated as plain text."
)
CACHEABLE = (Outcome.answered, Outcome.abstained)


@dataclass(frozen=True)
class Admission:
    request_id: str
    text: str  # normalized question text
    verdict: Verdict
    warning: str | None
    reservation: Reservation | None
    cache_key: str | None


def _question_salt(settings) -> str:
    """The configured salt, else a random one generated once and kept in the data dir."""
    if settings.question_hash_salt is not None:
        return settings.question_hash_salt.get_secret_value()
    path = Path(settings.data_dir) / "question-salt"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_hex(16)
        try:
            with open(path, "x") as fh:  # 'x': two processes racing keep the first salt
                fh.write(salt)
            path.chmod(0o600)
            return salt
        except FileExistsError:
            return path.read_text().strip()


class GuardPipeline:
    def __init__(
        self,
        *,
        rate_limiter: RateLimiter,
        budget: CostBudget,
        cache: ResponseCache,
        ledger: UsageLedger,
        registry: DocumentRegistry,
        detector,
        injection_action: str = "block",
        store_question: str = "redacted",
        question_salt: str = "",
        cache_namespace: str = "",
        redis=None,
    ) -> None:
        self.rate_limiter = rate_limiter
        self.budget = budget
        self.cache = cache
        self.ledger = ledger
        self.registry = registry
        self.detector = detector
        self.injection_action = injection_action
        self.store_question = store_question
        self.question_salt = question_salt
        self.cache_namespace = cache_namespace
        self._redis = redis

    @classmethod
    def from_settings(cls, settings, db: Database, *, detector=None) -> "GuardPipeline":
        redis_client = None
        if settings.redis_url:
            import redis

            redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        ledger = UsageLedger(db)
        registry = DocumentRegistry(db)
        prefix = settings.redis_key_prefix
        return cls(
            rate_limiter=RateLimiter.from_settings(settings),
            budget=CostBudget.from_settings(settings, ledger=ledger, registry=registry, redis=redis_client),
            cache=ResponseCache(ttl_s=settings.cache_ttl_s, redis=redis_client, key_prefix=f"{prefix}:cache"),
            ledger=ledger,
            registry=registry,
            detector=detector if detector is not None else default_detector(),
            injection_action=settings.injection_action,
            store_question=settings.store_question,
            question_salt=_question_salt(settings) if settings.store_question == "hash" else "",
            # Answers from another model (or the offline extractive one) are not replayed.
            cache_namespace=f"{settings.llm_model}:{'claude' if settings.anthropic_api_key else 'offline'}",
            redis=redis_client,
        )

    # --- before the model call --------------------------------------------------------------
    def admit(self, q: Question, *, max_cost_usd: float) -> Admission:
        """Raise RateLimited / InjectionBlocked / BudgetExceeded / ServiceUnavailable, or admit."""
        request_id = q.request_id or uuid.uuid4().hex
        text = normalize_text(q.text)
        self.rate_limiter.hit(q)

        # The detector sees the raw text: it reveals tag-character smuggling itself.
        verdict = self.detector.detect(q.text)
        warning = None
        if verdict.level >= BLOCKING_LEVEL:
            log.warning(
                "injection suspected request=%s level=%s score=%.2f reasons=%s action=%s",
                request_id, verdict.level.name, verdict.score, ",".join(verdict.reasons), self.injection_action,
            )
            if self.injection_action == "block":
                raise InjectionBlocked()
            if self.injection_action == "warn":
                warning = INJECTION_WARNING
        elif verdict.level > 0:
            log.info("injection low signal request=%s reasons=%s", request_id, ",".join(verdict.reasons))

        reservation = self.budget.reserve(q.workspace, q.user, max_cost_usd)
        key = None
        # Thread context, attachments and warned questions make an answer specific to one ask.
        if not q.history and not q.attachments and warning is None and text:
            try:
                version = f"{self.cache_namespace}@{self.registry.generation(q.scope)}"
                key = cache_key(text, q.scope, version)
            except Exception:
                log.warning("cache key unavailable (scope generation read failed)", exc_info=True)
        return Admission(request_id, text, verdict, warning, reservation, key)

    def cached_answer(self, admission: Admission, q: Question) -> Answer | None:
        """A cached answer costs nothing: on a hit the reservation is released here."""
        if admission.cache_key is None:
            return None
        cached = self.cache.get(admission.cache_key)
        if cached is None:
            return None
        self.release(admission)
        return replace(
            cached,
            request_id=admission.request_id,
            usage=Usage(model=cached.usage.model, cost_usd=0.0, cache_hit=True),
        )

    # --- after the model call ---------------------------------------------------------------
    def store_answer(self, admission: Admission, q: Question, answer: Answer) -> None:
        # Answers carrying notices (fallbacks, unread attachments) are not what we'd want to replay.
        if admission.cache_key is None or answer.outcome not in CACHEABLE or answer.usage.cache_hit or answer.notices:
            return
        self.cache.put(admission.cache_key, answer)

    def settle(self, admission: Admission, usage: Usage) -> None:
        if admission.reservation is not None:
            self.budget.settle(admission.reservation, 0.0 if usage.cache_hit else usage.cost_usd)

    def release(self, admission: Admission) -> None:
        if admission.reservation is not None:
            self.budget.release(admission.reservation)

    def stored_question(self, text: str) -> str:
        if self.store_question == "hash":
            from bot.guards.pii import question_hash

            return question_hash(text, self.question_salt)
        from bot.guards.pii import redact

        return redact(text)

    def record(self, q: Question, answer: Answer, *, admission: Admission | None = None) -> None:
        """One ledger row for this request (idempotent on its request id)."""
        request_id = (admission.request_id if admission else None) or answer.request_id or q.request_id or uuid.uuid4().hex
        text = admission.text if admission else normalize_text(q.text)
        usage = answer.usage
        try:
            self.ledger.record(
                LedgerEntry(
                    request_id=request_id, platform=q.platform, workspace=q.workspace, channel=q.channel,
                    user=q.user, outcome=str(answer.outcome), question=self.stored_question(text),
                    model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                    cost_usd=0.0 if usage.cache_hit else usage.cost_usd, latency_ms=usage.latency_ms,
                    cache_hit=usage.cache_hit,
                )
            )
        except Exception:
            # Never lose the user's answer over bookkeeping; the log line lets an operator reconcile.
            log.exception("ledger write failed request=%s outcome=%s cost=%.6f", request_id, answer.outcome, usage.cost_usd)

    def documents_changed(self, scope: Scope) -> None:
        """Invalidate cached answers for `scope` (workspace-wide → every channel of the workspace)."""
        self.registry.bump_generation(scope)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
