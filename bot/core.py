"""The one core path every platform shares.

    Question ─► guards (normalize, rate limit, injection, budget) ─► cache? ─► retrieval (scoped)
             ─► relevance gate ─► answer chain ─► output checks ─► settle cost ─► ledger ─► Answer

Connectors build a `Question`, call `Docent.ask`, and render the `Answer`. Nothing here knows
about Slack or Discord.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from typing import Callable

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from admin.db import Database
from admin.operations import AdminOperations
from bot.answering import AnswerEngine
from bot.guards.injection import DocumentScanner, default_detector, is_flagged
from bot.guards.output import check_output, make_canary
from bot.guards.pipeline import Admission, GuardPipeline
from bot.settings import Settings, get_settings
from bot.types import (
    Answer,
    BudgetExceeded,
    InjectionBlocked,
    Outcome,
    Question,
    RateLimited,
    ServiceUnavailable,
    Usage,
)
from knowledge.embeddings import Embedder, as_embedder, make_embedder
from knowledge.ingest import KnowledgeBase
from knowledge.retriever import HybridRetriever
from knowledge.stores import open_store
from knowledge.types import Scope

log = logging.getLogger(__name__)

NO_ANSWER = (
    "I couldn't find this in the documents linked to this channel, so I won't guess. "
    "An admin can add a document that covers it."
)
APOLOGY = "Sorry — something went wrong on my side while answering. The team has been notified in the logs."
WITHHELD = "I can't share that answer: it failed docent's safety checks. Please rephrase the question."


class Docent:
    """Owns the long-lived parts (store, model, database, guards) and runs every request."""

    def __init__(
        self,
        settings: Settings,
        *,
        knowledge: KnowledgeBase,
        engine: AnswerEngine,
        db: Database,
        guards: GuardPipeline,
        admin: AdminOperations,
        embedder: Embedder,
    ):
        self.settings = settings
        self.knowledge = knowledge
        self.engine = engine
        self.db = db
        self.guards = guards
        self.admin = admin
        self.embedder = embedder

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        chat_model: BaseChatModel | None = None,
        embedder: Embeddings | None = None,  # any LangChain Embeddings; wrapped with as_embedder
    ) -> "Docent":
        settings = settings or get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        embedder = as_embedder(embedder) if embedder is not None else make_embedder(
            settings.embedder, settings.embedding_model_path, settings.embedding_batch_size
        )
        store = open_store(
            qdrant_url=settings.qdrant_url,
            edge_path=settings.edge_path,
            api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
            collection=settings.qdrant_collection,
            dim=embedder.dim,
        )
        knowledge = KnowledgeBase(
            store,
            embedder,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        db = Database(settings.sqlalchemy_url)
        db.migrate()
        # With MiniLM the detectors add their embedding layers (classifier, off-topic requests);
        # with the test-only hash embedder they fall back to patterns.
        detector = default_detector(embedder)
        guards = GuardPipeline.from_settings(settings, db, detector=detector)
        doc_scanner = DocumentScanner(None, embedder)  # the question detector over-flags documents

        def scanner(text: str) -> list[str]:
            findings = doc_scanner.scan(text)
            return [f.passage for f in findings] if is_flagged(findings) else []

        admin = AdminOperations(
            knowledge,
            db,
            admin_user_ids=settings.admin_user_ids,
            scanner=scanner,
            quarantine_flagged=settings.quarantine_flagged_documents,
            on_documents_changed=guards.documents_changed,
        )
        admin.reconcile()  # a crash may have left store and registry out of step
        engine = AnswerEngine(settings, chat_model)
        return cls(
            settings, knowledge=knowledge, engine=engine, db=db, guards=guards, admin=admin, embedder=embedder
        )

    # ------------------------------------------------------------------------------------------
    def retriever(self, scope: Scope) -> HybridRetriever:
        return HybridRetriever(
            store=self.knowledge.store,
            embedder=self.embedder,
            scope=scope,
            k=self.settings.top_k,
            relevance_threshold=self.settings.relevance_threshold,
        )

    async def aask(self, q: Question, *, on_delta: Callable[[str], None] | None = None) -> Answer:
        return await asyncio.to_thread(self.ask, q, on_delta=on_delta)

    def ask(self, q: Question, *, on_delta: Callable[[str], None] | None = None) -> Answer:
        started = time.perf_counter()
        q = q if q.request_id else replace(q, request_id=uuid.uuid4().hex)
        admission: Admission | None = None
        try:
            admission = self.guards.admit(q, max_cost_usd=self.engine.max_cost_usd(q.text))
            answer = self._answer_admitted(q, admission, on_delta)
        except RateLimited as err:
            answer = self._refusal(q, Outcome.rate_limited, str(err), retry_after_s=err.retry_after_s)
        except BudgetExceeded as err:
            answer = self._refusal(q, Outcome.capped, str(err))
        except InjectionBlocked as err:
            answer = self._refusal(q, Outcome.blocked, str(err))
        except ServiceUnavailable as err:
            log.error("service unavailable: %s", err)
            answer = self._refusal(q, Outcome.error, str(err))
        except Exception:
            log.exception("request %s failed", q.request_id)
            if admission is not None:
                self.guards.release(admission)
            answer = self._refusal(q, Outcome.error, APOLOGY)
        latency_ms = (time.perf_counter() - started) * 1000
        answer = replace(answer, usage=replace(answer.usage, latency_ms=latency_ms))
        try:
            self.guards.record(q, answer, admission=admission)
        except Exception:
            log.exception("could not record request %s in the ledger", q.request_id)
        log.info(
            "request",
            extra={
                "request_id": q.request_id,
                "platform": q.platform,
                "outcome": str(answer.outcome),
                "latency_ms": round(latency_ms, 1),
                "model": answer.usage.model,
                "input_tokens": answer.usage.input_tokens,
                "output_tokens": answer.usage.output_tokens,
                "cost_usd": answer.usage.cost_usd,
                "cache_hit": answer.usage.cache_hit,
            },
        )
        return answer

    def _answer_admitted(
        self, q: Question, admission: Admission, on_delta: Callable[[str], None] | None
    ) -> Answer:
        notices = (admission.warning,) if admission.warning else ()
        cached = self.guards.cached_answer(admission, q)
        if cached is not None:
            self.guards.release(admission)
            return replace(
                cached,
                request_id=q.request_id,
                usage=replace(cached.usage, input_tokens=0, output_tokens=0, cost_usd=0.0, cache_hit=True),
            )

        retriever = self.retriever(q.scope)
        hits = retriever.search(admission.text)
        if not retriever.answerable(hits):
            self.guards.release(admission)
            answer = Answer(
                text=NO_ANSWER,
                sources=(),
                outcome=Outcome.abstained,
                usage=Usage(model="none"),
                notices=notices,
                request_id=q.request_id,
            )
            self.guards.store_answer(admission, q, answer)
            return answer

        canary = make_canary()
        system_prompt = self.engine.system_prompt(canary)
        if on_delta is not None:
            on_delta = _checked_deltas(
                on_delta,
                canary=canary,
                system_prompt=system_prompt,
                allowed_urls=[h.chunk.url for h in hits if h.chunk.url],
            )
        try:
            draft = self.engine.answer(
                admission.text, hits, history=q.history, on_delta=on_delta, canary=canary
            )
        except Exception:
            self.guards.release(admission)
            raise
        self.guards.settle(admission, draft.usage)

        verdict = check_output(
            draft.text,
            canary=canary,
            system_prompt=system_prompt,
            allowed_urls=[s.url for s in draft.sources if s.url],
        )
        if verdict.blocked:
            log.warning("answer withheld for request %s: %s", q.request_id, ", ".join(verdict.reasons))
            return Answer(
                text=WITHHELD,
                sources=(),
                outcome=Outcome.blocked,
                usage=draft.usage,
                request_id=q.request_id,
            )
        # An answer that cites nothing is the model saying the sources don't answer: an abstention,
        # shown without a sources list that would look like support.
        answer = Answer(
            text=verdict.text,
            sources=draft.sources if draft.cited else (),
            outcome=Outcome.answered if draft.cited else Outcome.abstained,
            usage=draft.usage,
            notices=notices + draft.notices,
            request_id=q.request_id,
        )
        if not draft.fell_back:
            self.guards.store_answer(admission, q, answer)
        return answer

    def _refusal(
        self, q: Question, outcome: Outcome, text: str, *, retry_after_s: float | None = None
    ) -> Answer:
        return Answer(
            text=text,
            sources=(),
            outcome=outcome,
            usage=Usage(model="none"),
            request_id=q.request_id,
            retry_after_s=retry_after_s,
        )

    def close(self) -> None:
        for part in (self.knowledge.store, self.db):
            try:
                part.close()
            except Exception:  # closing must never mask the real error
                log.debug("close failed", exc_info=True)


def _settled_prefix(text: str) -> str:
    """The part of a growing answer that can be checked now: up to the last whitespace (a URL or
    the canary is only judged whole), and never an unclosed Markdown link or image."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    head = text[: cut + 1] if cut >= 0 else ""
    bracket = head.rfind("[")
    if bracket >= 0:
        tail = head[bracket:]
        unclosed_label = "]" not in tail
        unclosed_target = "](" in tail and ")" not in tail[tail.index("](") + 2 :]
        if unclosed_label or unclosed_target:
            head = head[:bracket]
    return head


def _checked_deltas(
    on_delta: Callable[[str], None], *, canary: str, system_prompt: str, allowed_urls: list[str]
) -> Callable[[str], None]:
    """Streamed text passes the same output checks as the final answer before anyone sees it:
    foreign links are stripped as they arrive, and a leak stops the stream for good."""
    state = {"blocked": False, "shown": ""}

    def emit(text: str) -> None:
        if state["blocked"]:
            return
        verdict = check_output(
            _settled_prefix(text), canary=canary, system_prompt=system_prompt, allowed_urls=allowed_urls
        )
        if verdict.blocked:
            state["blocked"] = True
            return
        if verdict.text and verdict.text != state["shown"]:
            state["shown"] = verdict.text
            on_delta(verdict.text)

    return emit
