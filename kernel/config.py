"""One settings object for every process (API, worker, CLI), read from the environment and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def data_dir() -> Path:
    """The per-user data folder (XDG_DATA_HOME on Linux): the default database, `up`'s Redis."""
    return Path(platformdirs.user_data_dir("evenhand", appauthor=False))


def default_database_url() -> str:
    """A SQLite file in the per-user data folder, wherever the command runs."""
    return f"sqlite:///{data_dir() / 'evenhand.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix="EVENHAND_", extra="ignore")

    # Conventional names carry no prefix (the openai SDK reads the OPENAI_* ones too).
    database_url: str = Field(default_factory=default_database_url, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")

    provider: Literal["openai", "extractive"] | None = None
    model: str = "gpt-4o-mini"
    llm_timeout: float = 60.0  # seconds per LLM request
    llm_retries: int = 6  # retries of a retryable LLM error (ours alone: the SDK's are off)
    llm_backoff_base: float = 1.0  # first backoff in seconds, doubled each retry, with jitter
    llm_backoff_max: float = 30.0  # no single wait longer than this (Retry-After included)
    job_time_limit: float = 600.0  # wall time of one job, LLM calls and retries included
    job_lease_seconds: float = 30.0  # a running job's claim, renewed while its worker lives
    max_attempts: int = 3  # claims of one job before it fails with too_many_attempts
    sweep_interval: float = 5.0  # seconds between sweeps (stale leases, unpublished jobs)
    republish_after: float = 600.0  # a queued job published this long ago is published again
    llm_max_output_tokens: int = 4096
    response_format: Literal["json_schema", "json_object"] = "json_schema"
    # merge duplicate points, choose each point's quotes, credit reported positions to their
    # speakers, drop repeated summary sentences (off: the draft as the model gives it)
    refine: bool = True
    # one more LLM call per article judges whether each verified quote supports its claim
    support_check: bool = True
    # `evenhand up --model`: a GGUF file served by llama.cpp's server as one of up's children
    local_model: Path | None = None
    local_model_slots: int = Field(1, ge=1, le=64)  # requests the server decodes together
    local_model_context: int = Field(8192, ge=512)  # tokens of context per slot
    # `"mode": "provider_batch"` batches: how often a sweeper asks the provider about a round,
    # and the completion window each round is sent with (OpenAI offers "24h")
    provider_batch_poll: float = Field(30.0, gt=0)
    provider_batch_window: str = "24h"
    token_budget: int = 12_000  # above it, an article goes through map-reduce
    chunk_overlap_tokens: int = 200
    fetch_timeout: float = 15.0
    fetch_max_bytes: int = 5_000_000
    fetch_allow_private: bool = False  # development and tests only: lets URL input reach loopback

    queue: str = "evenhand"
    # gevent is left out: `evenhand worker` does not monkey-patch, and it ran no task (benchmarks)
    worker_pool: Literal["threads", "prefork", "solo"] = "threads"
    worker_concurrency: int = 64  # LLM calls wait on I/O: jobs/s grows with threads (benchmarks)

    # per API key, unless the key has its own (evenhand keys create --rate-limit ...)
    rate_limit: str = "600/minute"  # requests to /v1, shared by all API replicas through Redis
    key_cache_seconds: float = 5.0  # an API process trusts a key it looked up for this long
    # longest an API process answers a job from memory; an announced change drops it at once
    job_cache_seconds: float = 10.0
    daily_jobs: int = 10_000  # articles submitted per UTC day
    daily_tokens: int = 5_000_000  # LLM tokens (prompt + completion) per UTC day
    max_json_depth: int = 32  # nesting of a JSON body (metadata included)
    max_batch: int = 100  # articles in one POST /v1/batches
    max_story_articles: int = Field(10, ge=2)  # articles in one POST /v1/stories
    max_body_bytes: int = 2_000_000
    max_article_chars: int = 500_000

    # `evenhand up`'s Flower: "user:password"; unset: fresh credentials printed at start
    flower_basic_auth: SecretStr | None = None

    # the CLI client (`evenhand submit`, `status`); unset: the per-user config file's server and key
    api_url: str | None = None
    api_key: SecretStr | None = None

    webhook_max_attempts: int = Field(6, ge=1)  # deliveries of one callback before giving up
    # longest first wait between deliveries, whole seconds (Celery's retry_backoff), doubled
    # each time; each wait is drawn at random up to it
    webhook_backoff: int = Field(2, ge=1)
    webhook_timeout: float = 10.0
    worker_metrics_port: int = 9191  # the worker's /metrics; 0 turns it off
    worker_metrics_host: str = "0.0.0.0"

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    @model_validator(mode="after")
    def _default_provider(self) -> "Settings":
        # `openai` when a key or base URL is set, else the offline `extractive` provider.
        if self.provider is None:
            configured = self.openai_api_key is not None or self.openai_base_url is not None
            self.provider = "openai" if configured else "extractive"
        return self

    @property
    def broker_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and self.database_url != "sqlite:///:memory:":
            return Path(self.database_url.removeprefix(prefix))
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
