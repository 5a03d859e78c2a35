"""docent's Prometheus series, in one place, and the small functions that move them.

Every series lives in prometheus-client's default registry (so the process collector's CPU and
memory series come along); the ops endpoint (connectors/ops.py) serves it as `/metrics`. The core,
the admin operations (through a hook), the LLM path and the platform connectors call the
functions below; nothing here knows a platform or a store.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from bot.types import Answer, Outcome, Question

REQUESTS = Counter("docent_requests", "Questions answered, by platform and outcome.", ["platform", "outcome"])
ANSWER_LATENCY = Histogram(
    "docent_answer_latency_seconds",
    "Time from admission to the finished answer, by platform.",
    ["platform"],
    # Cached and refused answers take milliseconds; a model call with retries up to ~30 s.
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
TOKENS = Counter("docent_llm_tokens", "Model tokens billed, by model and direction.", ["model", "direction"])
COST = Counter("docent_llm_cost_usd", "Model cost in US dollars, by model.", ["model"])
CACHE_HITS = Counter("docent_cache_hits", "Answers replayed from the response cache.")
REFUSALS = Counter(
    "docent_refusals",
    "Questions refused by a guard: rate_limited, capped (daily spend cap) or blocked (injection or output check).",
    ["reason"],
)
DOCUMENTS = Counter(
    "docent_documents",
    "Document uploads by outcome: ingested, unchanged, quarantined or refused (the file could not be used).",
    ["outcome"],
)
CHUNKS = Counter("docent_chunks_ingested", "Chunks written to the store by uploads.")
CONNECTED = Gauge("docent_platform_connected", "1 while the platform's connection is up.", ["platform"])
RECONNECTS = Counter("docent_platform_reconnects", "Platform connections replaced after the first.", ["platform"])
LLM_RETRIES = Counter("docent_llm_retries", "Model calls retried after a transient failure.", ["model"])
LLM_FALLBACKS = Counter(
    "docent_llm_fallbacks", "Answers extracted from the documents because the model failed.", ["model", "reason"]
)

REFUSAL_OUTCOMES = {Outcome.rate_limited: "rate_limited", Outcome.capped: "capped", Outcome.blocked: "blocked"}
UPLOAD_OUTCOMES = ("ingested", "unchanged", "quarantined", "refused")


def answer_finished(question: Question, answer: Answer) -> None:
    """One finished request: its outcome, latency, tokens, cost and cache use."""
    usage = answer.usage
    REQUESTS.labels(question.platform, str(answer.outcome)).inc()
    ANSWER_LATENCY.labels(question.platform).observe(usage.latency_ms / 1000)
    if answer.outcome in REFUSAL_OUTCOMES:
        REFUSALS.labels(REFUSAL_OUTCOMES[answer.outcome]).inc()
    if usage.cache_hit:
        CACHE_HITS.inc()
        return  # a replay bills nothing
    if usage.input_tokens or usage.output_tokens:
        TOKENS.labels(usage.model, "input").inc(usage.input_tokens)
        TOKENS.labels(usage.model, "output").inc(usage.output_tokens)
    if usage.cost_usd:
        COST.labels(usage.model).inc(usage.cost_usd)


def document_uploaded(outcome: str, chunks: int = 0) -> None:
    """Hook for `AdminOperations(on_upload=…)`: one upload's outcome and the chunks it wrote."""
    DOCUMENTS.labels(outcome).inc()
    if chunks:
        CHUNKS.inc(chunks)


def llm_retried(model: str) -> None:
    LLM_RETRIES.labels(model).inc()


def llm_fell_back(model: str, reason: str) -> None:
    LLM_FALLBACKS.labels(model, reason).inc()


class PlatformConnection:
    """A platform's connection state and reconnect count, kept by its connector.

    With `probe` (True while the link is up, cheap) the gauge is read from it at scrape time, so
    a link that dies silently shows as down without anyone calling `disconnected()`.
    """

    def __init__(self, platform: str, probe: Callable[[], bool] | None = None) -> None:
        self.platform = platform
        self._probe = probe
        self._ever_connected = False
        self._up = False
        gauge = CONNECTED.labels(platform)
        if probe is not None:
            gauge.set_function(lambda: float(self.up))
        else:
            gauge.set(0)
        RECONNECTS.labels(platform)  # the series exists (at 0) from the start

    @property
    def up(self) -> bool:
        if self._probe is not None:
            try:
                return bool(self._probe())
            except Exception:
                return False
        return self._up

    def connected(self) -> None:
        """A connection (re)established: every one after the first is a reconnect."""
        if self._ever_connected:
            RECONNECTS.labels(self.platform).inc()
        self._ever_connected = True
        self._up = True
        if self._probe is None:
            CONNECTED.labels(self.platform).set(1)

    def disconnected(self) -> None:
        self._up = False
        if self._probe is None:
            CONNECTED.labels(self.platform).set(0)
