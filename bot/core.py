"""The one core path every platform shares.

    Question ─► guards (normalize, rate limit, injection, budget) ─► cache? ─► retrieval (scoped)
             ─► relevance gate ─► answer chain ─► output checks ─► settle cost ─► ledger ─► Answer

Connectors build a `Question`, call `Docent.ask`, and render the `Answer`. Nothing here knows
about Slack or Discord.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from sqlalchemy import text

from admin.db import Database
from admin.operations import AdminOperations
from bot import metrics
from bot.answering import AnswerEngine, DraftAnswer, related_sources
from bot.guards.injection import DocumentScanner, default_detector, is_flagged
from bot.guards.output import StreamedOutputCheck, check_output, make_canary
from bot.guards.pipeline import GuardPipeline, RequestLifecycle
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
from knowledge.answerability import Answerability, make_scorer
from knowledge.chain import Prompt
from knowledge.ingest import KnowledgeBase
from knowledge.loaders import PdfLimits
from knowledge.rerank import SentenceReranker
from knowledge.retriever import HybridRetriever
from knowledge.spelling import Speller
from knowledge.stores import open_store
from knowledge.types import EmbeddedChunks, Hit, Scope
from knowledge.vector_space import RECORD_FILE as VECTOR_SPACE_RECORD
from knowledge.vector_space import reconcile_vector_space

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
        self.reranker = SentenceReranker(embedder, depth=settings.rerank_depth, weight=settings.rerank_weight)
        self.speller = Speller(knowledge.store, refresh_s=settings.spelling_refresh_s) if settings.spelling else None
        self.answerability = make_scorer(
            embedder, threshold=settings.answerability_threshold, fallback_threshold=settings.relevance_threshold
        )

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
            settings.embedder, settings.embedding_model_path, settings.embedding_batch_size,
            backend=settings.embedding_backend, cache_dir=settings.embedding_cache_dir,
        )
        store = open_store(
            qdrant_url=settings.qdrant_url,
            edge_path=settings.edge_path,
            api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
            collection=settings.qdrant_collection,
            dim=embedder.dim,
        )
        # Vectors of another backend or model are not comparable: re-embed before serving.
        reconcile_vector_space(
            store, embedder, settings.data_dir / VECTOR_SPACE_RECORD,
            store_key=f"qdrant:{settings.qdrant_url}/{settings.qdrant_collection}" if settings.qdrant_url else "qdrant-edge",
        )
        knowledge = KnowledgeBase(
            store,
            embedder,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            pdf_limits=PdfLimits(
                max_pages=settings.pdf_max_pages,
                max_chars=settings.pdf_max_chars,
                parse_timeout_s=settings.pdf_parse_timeout_s,
            ),
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

        def scanner(text: str, chunks: EmbeddedChunks | None = None) -> list[str]:
            findings = doc_scanner.scan(text, chunks)
            return [f.passage for f in findings] if is_flagged(findings) else []

        admin = AdminOperations(
            knowledge,
            db,
            admin_user_ids=settings.admin_user_ids,
            scanner=scanner,
            quarantine_flagged=settings.quarantine_flagged_documents,
            on_documents_changed=guards.documents_changed,
            on_upload=metrics.document_uploaded,
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
            reranker=self.reranker,
            speller=self.speller,
        )

    def gate(self, retriever: HybridRetriever) -> Callable[[str, Sequence[Hit]], Answerability]:
        """The answerability decision for questions searched with `retriever`: the passages in
        the store's order (`HybridRetriever.gate_hits`, before any reranking), and how much
        closer another channel's documents come to the question (read only when the score uses it)."""
        looks = self.settings.answerability_other_channels

        def judge(query: str, hits: Sequence[Hit]) -> Answerability:
            elsewhere = (lambda: retriever.best_elsewhere(query)) if looks else None
            return self.answerability.score(retriever.search_text(query), retriever.gate_hits(query, hits),
                                            elsewhere=elsewhere)
        return judge

    async def aask(self, q: Question, *, on_delta: Callable[[str], None] | None = None) -> Answer:
        return await asyncio.to_thread(self.ask, q, on_delta=on_delta)

    def ask(self, q: Question, *, on_delta: Callable[[str], None] | None = None) -> Answer:
        """The one request path: guards, cache, the answer chain, output checks, one ledger row."""
        with self.guards.request(q) as request:
            try:
                request.admit()
                answer = request.cached_answer() or self._answer(request, on_delta)
            except RateLimited as err:
                answer = self._refusal(Outcome.rate_limited, str(err), retry_after_s=err.retry_after_s)
            except BudgetExceeded as err:
                answer = self._refusal(Outcome.capped, str(err))
            except InjectionBlocked as err:
                answer = self._refusal(Outcome.blocked, str(err))
            except ServiceUnavailable as err:
                log.error("service unavailable: %s", err)
                answer = self._refusal(Outcome.error, str(err))
            except Exception:
                log.exception("request %s failed", request.request_id)
                answer = self._refusal(Outcome.error, APOLOGY)
            answer = request.finish(answer)
        self._log_request(request.question, answer)
        metrics.answer_finished(request.question, answer)
        return answer

    def _answer(self, request: RequestLifecycle, on_delta: Callable[[str], None] | None) -> Answer:
        admission = request.admission
        assert admission is not None
        notices = (admission.warning,) if admission.warning else ()
        canary = make_canary()
        system_prompt = self.engine.system_prompt(canary)
        stream = (
            StreamedOutputCheck(on_delta, canary=canary, system_prompt=system_prompt) if on_delta is not None else None
        )
        retriever = self.retriever(request.question.scope)

        def before_model(prompt: Prompt) -> None:
            if stream is not None:
                stream.allowed_urls = [s.url for s in prompt.sources if s.url]
            request.reserve(self.engine.worst_case_usd(prompt))

        draft = self.engine.answer(
            admission.text, retriever, history=admission.history, on_delta=stream, canary=canary,
            gate=self.gate(retriever), before_model=before_model,
        )
        score = draft.answerability.score if draft.answerability is not None else None
        if draft.generated:
            request.settle(draft.usage)  # a model was called: billed even if it abstained
        if draft.abstained:
            return self._abstention(draft, notices, score)

        verdict = check_output(
            draft.text,
            canary=canary,
            system_prompt=system_prompt,
            allowed_urls=[s.url for s in draft.sources if s.url],
        )
        if verdict.blocked:
            log.warning("answer withheld for request %s: %s", request.request_id, ", ".join(verdict.reasons))
            return Answer(text=WITHHELD, sources=(), outcome=Outcome.blocked, usage=draft.usage)
        # An answer that cites nothing is the model saying the sources don't answer: an abstention,
        # shown without a sources list that would look like support (the closest passages are
        # offered as related instead).
        return Answer(
            text=verdict.text,
            sources=draft.sources if draft.cited else (),
            outcome=Outcome.answered if draft.cited else Outcome.abstained,
            usage=draft.usage,
            notices=notices + draft.notices,
            answerability=score,
            related=() if draft.cited else related_sources(draft.hits),
        )

    @staticmethod
    def _abstention(draft: DraftAnswer, notices: tuple[str, ...], score: float | None) -> Answer:
        """The one abstention docent gives, whether the gate decided before any model call or the
        model reported it through its tool: NO_ANSWER, and the closest passages as related."""
        return Answer(text=NO_ANSWER, sources=(), outcome=Outcome.abstained, usage=draft.usage, notices=notices,
                      answerability=score, related=related_sources(draft.hits))

    @staticmethod
    def _refusal(outcome: Outcome, text: str, *, retry_after_s: float | None = None) -> Answer:
        return Answer(text=text, sources=(), outcome=outcome, usage=Usage(model="none"), retry_after_s=retry_after_s)

    @staticmethod
    def _log_request(q: Question, answer: Answer) -> None:
        log.info(
            "request",
            extra={
                "request_id": answer.request_id,
                "platform": q.platform,
                "outcome": str(answer.outcome),
                "latency_ms": round(answer.usage.latency_ms, 1),
                "model": answer.usage.model,
                "input_tokens": answer.usage.input_tokens,
                "output_tokens": answer.usage.output_tokens,
                "cost_usd": answer.usage.cost_usd,
                "cache_hit": answer.usage.cache_hit,
            },
        )

    def readiness_checks(self) -> dict[str, Callable[[], None]]:
        """Name → a check that raises when that part can't serve: the store, the database, and
        Redis when configured (for the ops endpoint's /readyz)."""

        def database() -> None:
            with self.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        checks: dict[str, Callable[[], None]] = {"store": self.knowledge.store.count, "database": database}
        if self.guards.redis is not None:
            checks["redis"] = self.guards.redis.ping
        return checks

    def __enter__(self) -> "Docent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for part in (self.knowledge.store, self.db):
            try:
                part.close()
            except Exception:  # closing must never mask the real error
                log.debug("close failed", exc_info=True)

