"""The guard pipeline every question passes, and the one object that owns a request's lifecycle.

    with guards.request(question) as request:
        request.admit()              # normalize → rate limits → injection check (block / warn / log)
        request.cached_answer()      # same question, scope and document versions → free answer
        request.reserve(usd)         # right before the model call: the exact prompt's worst case
                                     #   against the caps, and a *pending* ledger row carrying it
        request.settle(usage)        # the actual cost replaces the worst case
        request.finish(answer)       # the outcome (cached if it is worth replaying)
    # on exit: an unsettled reservation is released, and exactly one ledger row is written

Cheapest refusal first, money last. A process that dies between the model call and settlement
leaves its pending row — and its worst-case reservation — charged; `sweep_interrupted` marks such
rows as interrupted errors after a lease (see `admin.ledger`), so a crash never loses a cost.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from admin.db import Database
from admin.ledger import LedgerEntry, UsageLedger
from admin.registry import DocumentRegistry
from bot.guards.budget import CostBudget, Reservation
from bot.guards.cache import ResponseCache, cache_key
from bot.guards.injection import BLOCKING_LEVEL, CLEAN, Verdict, default_detector
from bot.guards.normalize import normalize_text
from bot.guards.ratelimit import RateLimiter
from bot.types import Answer, InjectionBlocked, Outcome, PriorTurn, Question, Usage, thread_question_positions
from knowledge.types import Scope

log = logging.getLogger(__name__)

INJECTION_WARNING = (
    "⚠️ Parts of this question look like an attempt to change docent's instructions; "
    "they were treated as plain text."
)
CACHEABLE = (Outcome.answered, Outcome.abstained)
# A pending ledger row older than this belongs to a process that died mid-call (model calls are
# bounded by the LLM timeout and retries, far below it).
INTERRUPTED_AFTER = timedelta(minutes=15)
SWEEP_EVERY_S = 300.0


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


@dataclass(frozen=True)
class Admission:
    """What admission decided about a question."""

    text: str  # the normalized question
    verdict: Verdict
    warning: str | None
    cache_key: str | None
    # The thread docent reads with it: the question's history without the messages of other
    # people that docent answered and the injection detector blocks (see `screened_history`).
    history: tuple[PriorTurn, ...] = ()


class RequestLifecycle:
    """One request from admission to its ledger row (see the module docstring).

    Not thread-safe: one request is handled by one thread at a time.
    """

    def __init__(self, guards: "GuardPipeline", question: Question):
        self.guards = guards
        self.question = question if question.request_id else replace(question, request_id=uuid.uuid4().hex)
        self.request_id: str = self.question.request_id  # type: ignore[assignment]
        self.admission: Admission | None = None
        self.reservation: Reservation | None = None
        self.answer: Answer | None = None
        self._settled = False
        self._pending_written = False
        self._started = time.perf_counter()

    # --- the steps ------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The normalized question (after `admit`)."""
        return self.admission.text if self.admission else normalize_text(self.question.text)

    def admit(self) -> Admission:
        """Raise RateLimited / InjectionBlocked / ServiceUnavailable, or admit."""
        self.admission = self.guards.admit(self.question)
        return self.admission

    def cached_answer(self) -> Answer | None:
        """A cached answer to this question (it costs nothing), or None."""
        key = self.admission.cache_key if self.admission else None
        if key is None:
            return None
        cached = self.guards.cache.get(key)
        if cached is None:
            return None
        return replace(
            cached,
            request_id=self.request_id,
            usage=Usage(model=cached.usage.model, cost_usd=0.0, cache_hit=True),
        )

    def reserve(self, worst_case_usd: float) -> None:
        """Reserve the worst case against the caps (raises BudgetExceeded) and, when money is at
        stake, write the pending ledger row that carries it until settlement."""
        if self.reservation is not None:
            raise RuntimeError("a request reserves once")
        q = self.question
        self.reservation = self.guards.budget.reserve(q.workspace, q.user, worst_case_usd)
        if self.reservation.amount_microusd > 0:
            self._pending_written = self.guards.record_pending(self, self.reservation.amount_usd)

    def settle(self, usage: Usage) -> None:
        if self.reservation is not None and not self._settled:
            self.guards.budget.settle(self.reservation, 0.0 if usage.cache_hit else usage.cost_usd)
        self._settled = True

    def finish(self, answer: Answer) -> Answer:
        """The request's outcome; latency is measured here and the answer cached if replayable."""
        latency_ms = (time.perf_counter() - self._started) * 1000
        self.answer = replace(answer, request_id=self.request_id, usage=replace(answer.usage, latency_ms=latency_ms))
        self.guards.remember(self, self.answer)
        return self.answer

    # --- the end ------------------------------------------------------------------------------
    def __enter__(self) -> "RequestLifecycle":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.reservation is not None and not self._settled:
            self.guards.budget.release(self.reservation)
            self._settled = True
        if self.answer is None:  # left by an exception: still one row, as an error
            self.answer = Answer(text="", sources=(), outcome=Outcome.error, usage=Usage(model="none"),
                                 request_id=self.request_id)
        self.guards.record(self, self.answer)


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
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

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

    @property
    def redis(self):
        """The Redis client the guards share, or None in embedded mode."""
        return self._redis

    def request(self, q: Question) -> RequestLifecycle:
        """`with guards.request(q) as request:` — see the module docstring."""
        self._maybe_sweep()
        return RequestLifecycle(self, q)

    # --- admission ------------------------------------------------------------------------------
    def admit(self, q: Question) -> Admission:
        text = normalize_text(q.text)
        self.rate_limiter.hit(q)

        # The detector sees the raw text: it reveals tag-character smuggling itself.
        verdict = self.detector.detect(q.text) if q.text.strip() else CLEAN
        warning = None
        if verdict.level >= BLOCKING_LEVEL:
            log.warning(
                "injection suspected request=%s level=%s score=%.2f reasons=%s action=%s",
                q.request_id, verdict.level.name, verdict.score, ",".join(verdict.reasons), self.injection_action,
            )
            if self.injection_action == "block":
                raise InjectionBlocked()
            if self.injection_action == "warn":
                warning = INJECTION_WARNING
        elif verdict.level > 0:
            log.info("injection low signal request=%s reasons=%s", q.request_id, ",".join(verdict.reasons))

        key = None
        # Thread context, attachments and warned questions make an answer specific to one ask.
        if not q.history and not q.attachments and warning is None and text:
            try:
                version = f"{self.cache_namespace}@{self.registry.generation(q.scope)}"
                key = cache_key(text, q.scope, version)
            except Exception:
                log.warning("cache key unavailable (scope generation read failed)", exc_info=True)
        return Admission(text, verdict, warning, key, self.screened_history(q))

    def screened_history(self, q: Question) -> tuple[PriorTurn, ...]:
        """`q.history` without another person's message that docent answered and that the
        injection detector blocks (when `injection_action` is "block"; logged, never stored).

        A follow-up is searched with the thread's questions, another person's among them
        (`knowledge.followups.thread_questions`): a blocked one must neither steer the search nor
        reach the model. Other messages are quoted to the model as untrusted data, as before; only
        the ones that can steer the search are scanned."""
        if self.injection_action != "block":
            return q.history
        blocked = set()
        for i in thread_question_positions(q.history):
            if q.history[i].role == "user":  # the asker's own: screened when it was asked
                continue
            verdict = self.detector.detect(q.history[i].text)
            if verdict.level >= BLOCKING_LEVEL:
                log.warning("thread message left out request=%s level=%s reasons=%s",
                            q.request_id, verdict.level.name, ",".join(verdict.reasons))
                blocked.add(i)
        return tuple(turn for i, turn in enumerate(q.history) if i not in blocked)

    # --- after the answer -----------------------------------------------------------------------
    def remember(self, request: RequestLifecycle, answer: Answer) -> None:
        """Cache a replayable answer: answered or abstained, fresh, no notices, no fallback."""
        key = request.admission.cache_key if request.admission else None
        if key is None or answer.outcome not in CACHEABLE or answer.usage.cache_hit or answer.notices:
            return
        self.cache.put(key, answer)

    def stored_question(self, text: str) -> str:
        if self.store_question == "hash":
            from bot.guards.pii import question_hash

            return question_hash(text, self.question_salt)
        from bot.guards.pii import redact

        return redact(text)

    def _entry(self, request: RequestLifecycle, answer: Answer | None, *, pending_cost_usd: float = 0.0) -> LedgerEntry:
        q = request.question
        common = dict(
            request_id=request.request_id, platform=q.platform, workspace=q.workspace, channel=q.channel,
            user=q.user, question=self.stored_question(request.text),
        )
        if answer is None:
            return LedgerEntry(**common, outcome=UsageLedger.PENDING, cost_usd=pending_cost_usd)
        usage = answer.usage
        return LedgerEntry(
            **common, outcome=str(answer.outcome), model=usage.model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, cost_usd=0.0 if usage.cache_hit else usage.cost_usd,
            latency_ms=usage.latency_ms, cache_hit=usage.cache_hit,
        )

    def record_pending(self, request: RequestLifecycle, reserved_usd: float) -> bool:
        try:
            return self.ledger.record(self._entry(request, None, pending_cost_usd=reserved_usd))
        except Exception:
            log.exception("could not write the pending ledger row of request %s", request.request_id)
            return False

    def record(self, request: RequestLifecycle, answer: Answer) -> None:
        """The request's one ledger row (settles its pending row; idempotent on the request id)."""
        try:
            self.ledger.record(self._entry(request, answer))
        except Exception:
            # Never lose the user's answer over bookkeeping; the log line lets an operator reconcile.
            log.exception("ledger write failed request=%s outcome=%s cost=%.6f", request.request_id,
                          answer.outcome, answer.usage.cost_usd)

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_EVERY_S
            self.sweep_interrupted()
        finally:
            self._sweep_lock.release()

    def sweep_interrupted(self, older_than: timedelta = INTERRUPTED_AFTER) -> int:
        """Mark pending rows of dead processes as interrupted errors, keeping their charged cost."""
        try:
            swept = self.ledger.sweep_pending(older_than)
        except Exception:
            log.warning("could not sweep interrupted requests", exc_info=True)
            return 0
        if swept:
            log.warning("charged %d interrupted request(s) at their reserved worst case", swept)
        return swept

    def documents_changed(self, scope: Scope) -> None:
        """Invalidate cached answers for `scope` (workspace-wide → every channel of the workspace)."""
        self.registry.bump_generation(scope)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
