"""Database tables and their public shapes, as a SQLModel ladder (Base -> table -> Public).

The schema itself is made only by Alembic migrations (evenhand/migrations).
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache
def _defaults(model: type[SQLModel]) -> tuple[tuple[str, Any, Any], ...]:
    """(field, default, default factory) of every field of a table model."""
    primary = {column.name for column in model.__table__.primary_key}  # type: ignore[attr-defined]
    return tuple(
        (name, field.default, field.default_factory)
        for name, field in model.model_fields.items()
        # an autoincrement key left out: the database numbers the row
        if not (name in primary and field.default is None and field.default_factory is None)
    )


def row_values(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A row of `model` as the dict an ORM bulk insert takes, its defaults filled in as the model
    would fill them: what building the ORM object gives, at a fraction of the CPU (the submit
    path builds one article and one job per request)."""
    fields = _defaults(model)
    if unknown := values.keys() - {name for name, _, _ in fields}:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    row = {}
    for name, default, factory in fields:
        if name in values:
            row[name] = values[name]
        else:
            row[name] = factory() if factory is not None else default
    return row


def _timestamp(nullable: bool = True, **kwargs: Any) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=nullable, **kwargs)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


FINISHED_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.canceled})


# --- API keys -------------------------------------------------------------------------------------


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=32, description="The key's first characters, to recognise it")
    key_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the full key")
    # per-key limits; None: the defaults from the settings
    rate_limit: str | None = Field(default=None, max_length=64, description='e.g. "120/minute"')
    daily_jobs: int | None = None
    daily_tokens: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = _timestamp()


# --- articles -------------------------------------------------------------------------------------


class ArticleBase(SQLModel):
    title: str | None = Field(default=None, max_length=1000)
    source: str | None = Field(default=None, max_length=1000)
    url: str | None = Field(default=None, max_length=2048)
    language: str | None = Field(default=None, max_length=35)


class Article(ArticleBase, table=True):
    __tablename__ = "article"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: int = Field(foreign_key="api_key.id", index=True)
    input_kind: str = Field(max_length=10, description="text | html | url")
    raw_text: str = Field(sa_type=sa.Text, description="The input as submitted (HTML for html)")
    clean_text: str | None = Field(default=None, sa_type=sa.Text)
    content_hash: str | None = Field(default=None, max_length=64, index=True)
    extra: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


# --- batches --------------------------------------------------------------------------------------


class BatchMode(StrEnum):
    live = "live"  # each job calls the provider as it runs
    provider_batch = "provider_batch"  # the jobs' calls go through the provider's Batch API


class Batch(SQLModel, table=True):
    """Many articles submitted at once; each has its own job."""

    __tablename__ = "batch"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: int = Field(foreign_key="api_key.id", index=True)
    mode: BatchMode = Field(default=BatchMode.live, sa_type=sa.String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


# --- jobs -----------------------------------------------------------------------------------------


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        sa.Index("ix_job_owner_created", "owner_id", "created_at"),
        # the sweeper's two questions: expired leases, queued jobs to (re)publish
        sa.Index("ix_job_status_lease", "status", "lease_expires_at"),
        sa.Index("ix_job_status_published", "status", "published_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    article_id: uuid.UUID = Field(foreign_key="article.id", index=True)
    owner_id: int = Field(foreign_key="api_key.id")
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="batch.id", index=True)
    callback_url: str | None = Field(default=None, max_length=2048)
    status: JobStatus = Field(default=JobStatus.queued, sa_type=sa.String(16))
    attempts: int = 0
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    task_id: str | None = Field(default=None, max_length=64)
    # fencing: a claim gets a fresh token; only its holder may renew, finish or fail the job
    lease_token: uuid.UUID | None = Field(default=None)
    lease_expires_at: datetime | None = _timestamp()
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    published_at: datetime | None = _timestamp()
    started_at: datetime | None = _timestamp()
    finished_at: datetime | None = _timestamp()
    # a provider_batch job waiting (queued) for the answers its last run asked the provider for
    parked_at: datetime | None = _timestamp()


# --- the provider's Batch API ---------------------------------------------------------------------


class ProviderBatch(SQLModel, table=True):
    """One round of a provider_batch batch: the requests its parked jobs asked for, sent to the
    provider's Batch API as one JSONL file (machine: worker.provider_batches)."""

    __tablename__ = "provider_batch"
    # one round at a time per number: two sweepers reserving the same round, one wins
    __table_args__ = (sa.UniqueConstraint("batch_id", "round"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="batch.id", index=True)
    round: int
    # ours until the provider has it ("submitting"), then the provider's own status
    status: str = Field(default="submitting", max_length=32)
    provider_id: str | None = Field(default=None, max_length=200)
    input_file_id: str | None = Field(default=None, max_length=200)
    requests: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)  # the provider's reason, if failed
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    checked_at: datetime | None = _timestamp()
    finished_at: datetime | None = _timestamp()


class LLMRequest(SQLModel, table=True):
    """One chat completion a provider_batch job asked for, and the provider's answer to it: its
    runs replay the answers and ask only what is new."""

    __tablename__ = "llm_request"
    __table_args__ = (sa.UniqueConstraint("job_id", "key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)  # the JSONL custom_id
    batch_id: uuid.UUID = Field(foreign_key="batch.id", index=True)
    job_id: uuid.UUID = Field(foreign_key="job.id")
    key: str = Field(max_length=64, description="SHA-256 of the request body")
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    provider_batch_id: uuid.UUID | None = Field(
        default=None, foreign_key="provider_batch.id", index=True
    )
    # none_as_null: "no answer yet" is SQL NULL, which the queries look for, not JSON null
    answer: dict[str, Any] | None = Field(
        default=None, sa_column=Column(sa.JSON(none_as_null=True), nullable=True)
    )
    error: dict[str, Any] | None = Field(
        default=None, sa_column=Column(sa.JSON(none_as_null=True), nullable=True)
    )
    attempts: int = 0  # rounds that sent it
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


# --- results --------------------------------------------------------------------------------------


class Result(SQLModel, table=True):
    """A job's result: the document the API serves (its shape is `kernel.schemas.ResultPublic`,
    stored and loaded only through `kernel.results`), beside the few columns queries need."""

    __tablename__ = "result"
    __table_args__ = (
        # dedupe: the same clean text through the same provider, model and prompt is reused
        sa.Index("ix_result_reuse", "content_hash", "provider", "model", "prompt_version"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # unique: a redelivered task can never store a second result for the same job
    job_id: uuid.UUID = Field(foreign_key="job.id", unique=True)
    article_id: uuid.UUID = Field(foreign_key="article.id", index=True)
    content_hash: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    model: str = Field(max_length=200)
    prompt_version: str = Field(max_length=32)
    # the daily token quota sums them
    prompt_tokens: int = 0
    completion_tokens: int = 0
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


# --- stories --------------------------------------------------------------------------------------


class StoryStatus(StrEnum):
    waiting = "waiting"  # its articles' jobs are running
    comparing = "comparing"  # every job ended: the comparison is queued or running
    succeeded = "succeeded"
    failed = "failed"


FINISHED_STORY_STATUSES = frozenset({StoryStatus.succeeded, StoryStatus.failed})


class Story(SQLModel, table=True):
    """Several articles about one event, compared once each article's job has ended (its state
    machine: kernel.stories; its result document's shape: kernel.schemas.StoryResultPublic)."""

    __tablename__ = "story"
    __table_args__ = (
        sa.Index("ix_story_owner_created", "owner_id", "created_at"),
        sa.Index("ix_story_status_lease", "status", "lease_expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: int = Field(foreign_key="api_key.id")
    title: str | None = Field(default=None, max_length=1000)
    status: StoryStatus = Field(default=StoryStatus.waiting, sa_type=sa.String(16))
    attempts: int = 0  # claims of the comparison
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
    lease_token: uuid.UUID | None = Field(default=None)
    lease_expires_at: datetime | None = _timestamp()
    published_at: datetime | None = _timestamp()
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = _timestamp()
    document: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class StoryArticle(SQLModel, table=True):
    """One article of a story, with the job that analyses it for the story."""

    __tablename__ = "story_article"

    story_id: uuid.UUID = Field(foreign_key="story.id", primary_key=True)
    position: int = Field(primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="job.id", index=True)
    article_id: uuid.UUID = Field(foreign_key="article.id")


# --- idempotency ----------------------------------------------------------------------------------


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a POST with an `Idempotency-Key`, replayed for the same key and body."""

    __tablename__ = "idempotency_record"
    __table_args__ = (sa.UniqueConstraint("owner_id", "key", name="uq_idempotency_owner_key"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="api_key.id")
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    job_id: uuid.UUID = Field(foreign_key="job.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
