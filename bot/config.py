"""The one Settings object. Nothing else in membot reads the environment.

Values come from the process environment and from a ``.env`` file in the working
directory. ``.env.example`` lists every field below with its default and meaning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot import assets
from bot.assets import DEFAULT_ASSETS_DIRS
from bot.errors import ConfigError

NO_LLM = (
    "No LLM endpoint configured. Set OPENAI_API_KEY (or LLM_API_KEY) for OpenAI, "
    "or LLM_BASE_URL for a local server, e.g. http://localhost:11434/v1 (Ollama), "
    "http://localhost:8000/v1 (vLLM), http://localhost:1234/v1 (LM Studio), "
    "http://localhost:8080/v1 (llama.cpp server); also set LLM_MODEL."
)


class Settings(BaseSettings):
    """Every setting of membot. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True,
        env_ignore_empty=True,
    )

    # --- LLM (any OpenAI-compatible Chat Completions endpoint) -------------------------
    llm_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible API (Ollama, vLLM, LM Studio, llama.cpp, Azure-style). Empty = api.openai.com.",
    )
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key (LLM_API_KEY or OPENAI_API_KEY). Local servers usually need none.",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model name.")
    llm_context_window: int = Field(default=16_000, ge=2_048, description="Tokens the agent may use per prompt (<= the model's window).")
    llm_reply_reserve: int = Field(default=1_024, ge=64, description="Tokens kept free for the model's reply.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Seconds to wait for one LLM call.")
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="Retries on rate limits, 5xx and connection errors (bounded backoff).")
    llm_temperature: float = Field(default=0.3, ge=0, le=2)
    llm_tools: Literal["on", "off"] = Field(default="on", description="Tool calling. off = plain-text replies, core memory edited by one constrained-JSON call per heartbeat (for models/servers without tool calling; also chosen automatically when the server says it cannot do tools).")

    # --- Embeddings ------------------------------------------------------------------------
    embedding_provider: Literal["fastembed", "openai"] = Field(default="fastembed")
    embedding_model: str = Field(default="sentence-transformers/all-MiniLM-L6-v2")
    embedding_model_path: str | None = Field(default=None, description="Local model directory for fastembed (no download).")
    embedding_base_url: str | None = Field(default=None, description="OpenAI-compatible /v1 base for embeddings (provider=openai). Defaults to LLM_BASE_URL.")
    embedding_api_key: SecretStr | None = Field(default=None, description="Key for the embeddings endpoint. Defaults to the LLM key.")
    embedding_batch_size: int = Field(default=64, ge=1, le=2048, description="Most texts per embedding batch.")
    embedding_batch_tokens: int = Field(default=2048, ge=512, le=262144, description="Local embedding batches: most padded tokens per batch (texts x longest); bounds memory on long texts.")
    embedding_threads: int = Field(default=0, ge=0, le=64, description="CPU threads for bulk embedding (0 = all cores but one in the bot, all cores in CLI commands that open the stores themselves, e.g. an import while no bot runs).")
    embedding_cache_dir: str = Field(default="./data/models", description="Where fastembed caches downloaded models.")
    embedding_quantize: Literal["none", "int8"] = Field(default="none", description="int8: quantize the local model's weights once, into EMBEDDING_CACHE_DIR (needs the onnx package: pip install 'membot[quantize]'); about 2x faster on CPU, recall slightly lower (see README). Choose before the first import: stored vectors are not re-embedded.")

    # --- Offline assets (bot.assets) ---------------------------------------------------------
    assets_dirs: str = Field(default=DEFAULT_ASSETS_DIRS, description="Directories searched (':'-separated, relative to the checkout) for models/all-MiniLM-L6-v2-onnx and tiktoken_cache when EMBEDDING_MODEL_PATH / TIKTOKEN_CACHE_DIR are not set.")

    # --- Redis (hot state, queues) ---------------------------------------------------------
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    redis_prefix: str = Field(default="membot", pattern=r"^[A-Za-z0-9_.-]{1,40}$")

    # --- Qdrant (recall and archival vectors) ----------------------------------------------
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL; empty = embedded engine under QDRANT_PATH.")
    qdrant_api_key: SecretStr | None = None
    qdrant_path: str = Field(default="./data/qdrant", description="Directory of the embedded Qdrant engine.")
    qdrant_collection_prefix: str = Field(default="membot", pattern=r"^[A-Za-z0-9_-]{1,40}$")

    # --- Memory ------------------------------------------------------------------------------
    persona: str = Field(default="", description="Initial persona block text; empty = built-in default.")
    core_persona_limit: int = Field(default=2_000, ge=100, le=20_000, description="Characters in the persona block.")
    core_human_limit: int = Field(default=2_000, ge=100, le=20_000, description="Characters in the human block.")
    memory_warning_fraction: float = Field(default=0.7, gt=0.1, lt=1.0, description="Prompt share of the budget that triggers the memory-pressure alert.")
    memory_evict_fraction: float = Field(default=0.5, gt=0.05, lt=1.0, description="Share of the FIFO evicted on flush.")
    max_chain_steps: int = Field(default=6, ge=1, le=50, description="Maximum LLM calls chained from one event.")
    tool_result_max_chars: int = Field(default=2_500, ge=200, description="Tool results are cut to this length with a visible note.")
    tool_arg_max_chars: int = Field(default=8_000, ge=100, description="Largest accepted string argument of a tool.")
    search_page_size: int = Field(default=5, ge=1, le=50, description="Hits per page of the search tools.")

    # --- Knowledge base (documents per server / workspace, bot.knowledge) ------------------------
    knowledge_max_file_mb: float = Field(default=20.0, gt=0, le=500, description="Largest document accepted for the knowledge base, in MB.")
    knowledge_chunk_chars: int = Field(default=1_000, ge=200, le=8_000, description="Longest knowledge chunk in characters (chunks never cross a heading).")
    knowledge_drift_days: float = Field(default=7.0, gt=0, description="Window of the knowledge drift figure on /metrics (share of chunks changed in the last N days).")

    # --- Memory freshness: forgetting curve of archival notes (bot.memory.forgetting) -------
    forget_use_weight: float = Field(default=0.5, ge=0, le=5, description="Forgetting curve a: weight of a note's recent use.")
    forget_importance_weight: float = Field(default=0.5, ge=0, le=5, description="Forgetting curve b: weight of a note's importance (1-5).")
    forget_decay_weight: float = Field(default=0.5, ge=0, le=5, description="Forgetting curve c: weight of time since a note was written or used.")
    forget_half_life_days: float = Field(default=90.0, gt=0, description="Days for a note's age decay (and its uses' recency) to halve.")

    # --- Service -------------------------------------------------------------------------------
    workers: int = Field(default=32, ge=1, le=1024, description="Concurrent per-user workers in this process.")
    rate_limit_per_minute: int = Field(default=20, ge=0, description="Messages per user per minute (0 = off).")
    step_timeout_s: float = Field(default=300.0, gt=0, description="Upper bound of one agent step (its chain stops early to stay inside it).")
    ops_host: str = Field(default="127.0.0.1")
    ops_port: int = Field(default=0, ge=0, le=65535, description="HTTP port for /healthz /readyz /metrics (0 = off).")
    admin_socket: str = Field(default="./data/admin.sock", description="Unix socket (owner-only) on which a running bot serves the CLI's memory commands; off = none.")
    log_level: str = Field(default="INFO")
    log_format: Literal["auto", "json", "console"] = Field(default="auto")
    tiktoken_cache_dir: str | None = Field(default=None, description="tiktoken's files (exported as TIKTOKEN_CACHE_DIR). Empty = tiktoken_cache found in ASSETS_DIRS, else ./data/tiktoken (downloaded there once).")

    # --- Never stuck: retries, dead letters, delivery, leases ----------------------------------
    max_event_attempts: int = Field(default=3, ge=1, le=100, description="Tries of an event whose step fails before it moves to the dead-letter list (the user gets a notice).")
    retry_base_s: float = Field(default=2.0, gt=0, description="First wait before retrying a failed step or delivery; doubles on each try.")
    retry_max_s: float = Field(default=60.0, gt=0, description="Longest wait between retries.")
    delivery_max_attempts: int = Field(default=10, ge=1, le=1000, description="Tries of a reply failing temporarily (5xx, 429, network) before it moves to the dead-letter list.")
    lock_lease_s: float = Field(default=6.0, ge=1, le=600, description="Per-user lock lease, renewed by its owner; a crashed replica's users are taken over this long after its last renewal.")

    # --- Heartbeats ------------------------------------------------------------------------------
    heartbeat_enabled: bool = Field(default=True)
    heartbeat_tick_s: float = Field(default=5.0, gt=0)
    heartbeat_idle_s: float = Field(default=600.0, gt=0, description="First reflection this long after a conversation goes idle.")
    heartbeat_away_s: float = Field(default=21_600.0, gt=0, description="Cadence while the user is away.")
    heartbeat_stop_after_s: float = Field(default=604_800.0, gt=0, description="No more heartbeats this long after the user's last message.")
    heartbeat_daily_budget: int = Field(default=6, ge=0, description="Heartbeat LLM calls per user per day.")
    heartbeat_proactive: bool = Field(default=False, description="Allow heartbeat output to be sent to users.")
    login_gap_s: float = Field(default=21_600.0, gt=0, description="A user message after this long away adds a login event telling the agent the gap.")
    archival_merge_threshold: float = Field(default=0.92, gt=0, le=1.0, description="Similarity above which archival items count as duplicates.")

    # --- Who may talk to the bot (docs/privacy.md) -------------------------------------------------
    allowed_guilds: str = Field(default="", description="Comma-separated Discord server ids the bot serves; it leaves any other server (empty = any).")
    allowed_teams: str = Field(default="", description="Comma-separated Slack team ids the bot serves; events of other workspaces are ignored (empty = any).")
    dm_only: bool = Field(default=False, description="Answer direct messages only, never in channels.")
    channel_opt_in: bool = Field(default=False, description="Answer in a channel only once a server admin enabled it (/bot channels, Slack: /memory channels).")

    # --- Platforms ---------------------------------------------------------------------------------
    discord_token: SecretStr | None = None
    discord_message_content: bool = Field(default=False, description="Use the privileged message-content intent (also answers replies to the bot that do not mention it).")
    discord_shard_count: int = Field(default=0, ge=0, description="Total Discord shards across replicas (0 = one process, no sharding).")
    discord_shard_id: int = Field(default=0, ge=0, description="This replica's shard (0..DISCORD_SHARD_COUNT-1).")
    discord_admin_ids: str = Field(default="", description="Comma-separated Discord user ids allowed admin commands besides server admins.")
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = Field(default=None, description="xapp- token for Socket Mode.")
    slack_signing_secret: SecretStr | None = Field(default=None, description="For HTTP mode.")
    slack_mode: Literal["socket", "http"] = Field(default="socket")
    slack_port: int = Field(default=3000, ge=1, le=65535)
    slack_admin_ids: str = Field(default="", description="Comma-separated Slack user ids allowed admin commands besides workspace admins.")
    slack_api_url: str | None = Field(default=None, description="Override of the Slack Web API base URL (tests).")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return v

    @model_validator(mode="after")
    def _find_assets(self) -> Settings:
        """Use the offline assets found in ASSETS_DIRS for what is not set explicitly, and
        export tiktoken's directory (tiktoken reads only its environment variable)."""
        dirs = assets.search_dirs(self.assets_dirs)
        if self.embedding_provider == "fastembed" and not self.embedding_model_path:
            found = assets.find_model_dir(self.embedding_model, dirs)
            self.embedding_model_path = str(found) if found else None
        if not self.tiktoken_cache_dir:
            found = assets.find_tiktoken_dir(dirs)
            self.tiktoken_cache_dir = str(found) if found else assets.TIKTOKEN_DOWNLOAD_DIR
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(self.tiktoken_cache_dir).resolve()))
        return self

    # --- derived -----------------------------------------------------------------------------
    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        if self.discord_shard_count and self.discord_shard_id >= self.discord_shard_count:
            raise ValueError("DISCORD_SHARD_ID must be below DISCORD_SHARD_COUNT")
        return self

    def allowed_servers(self, platform: str) -> frozenset[str]:
        """ALLOWED_GUILDS (discord) / ALLOWED_TEAMS (slack) as a set; empty = any."""
        raw = {"discord": self.allowed_guilds, "slack": self.allowed_teams}.get(platform, "")
        return frozenset(x for x in raw.replace(",", " ").split() if x)

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url) or self.llm_api_key is not None

    @property
    def knowledge_max_bytes(self) -> int:
        return int(self.knowledge_max_file_mb * 1_048_576)

    @property
    def admin_socket_path(self) -> str | None:
        """ADMIN_SOCKET, or None when it is switched off."""
        return None if self.admin_socket.strip().lower() in ("", "off", "none") else self.admin_socket

    @property
    def prompt_budget(self) -> int:
        return self.llm_context_window - self.llm_reply_reserve

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_enabled(self) -> bool:
        if self.slack_bot_token is None:
            return False
        return self.slack_app_token is not None if self.slack_mode == "socket" else self.slack_signing_secret is not None

    def require_llm(self) -> None:
        if not self.llm_configured:
            raise ConfigError(NO_LLM)


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Build Settings, translating validation errors into ConfigError naming the field."""
    from pydantic import ValidationError

    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            field = ".".join(str(x) for x in err["loc"]).upper()
            parts.append(f"{field}: {err['msg']}")
        raise ConfigError("Invalid settings: " + "; ".join(parts)) from None
