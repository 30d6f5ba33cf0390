"""Results in and out of the database: the one place that knows how a `ResultPublic` is stored.

A result is stored whole, as the JSON document the API serves, beside the columns that queries
need (reuse lookups and the daily token quota). A new result field is declared on the schema and
set by its producer; old documents get the field's default when they are loaded, or a migration
fills them in.
"""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import col

from kernel.models import Result, utcnow
from kernel.schemas import ResultPublic

# Built once with bind parameters: building a statement and its cache key costs more CPU than
# executing it.
_INSERT = sa.insert(Result)
_REUSABLE = (
    sa.select(col(Result.document))
    .where(
        col(Result.content_hash) == sa.bindparam("text_hash"),
        col(Result.provider) == sa.bindparam("label_provider"),
        col(Result.model) == sa.bindparam("label_model"),
        col(Result.prompt_version) == sa.bindparam("label_prompt_version"),
    )
    .order_by(col(Result.created_at))
    .limit(1)
)
_OF_JOB = sa.select(col(Result.document)).where(col(Result.job_id) == sa.bindparam("job_id"))
_LATEST_OF_ARTICLE = (
    sa.select(col(Result.document))
    .where(col(Result.article_id) == sa.bindparam("article_id"))
    .order_by(col(Result.created_at).desc())
    .limit(1)
)


def store_result(
    connection: Connection,
    *,
    job_id: uuid.UUID,
    article_id: uuid.UUID,
    content_hash: str,
    result: ResultPublic,
) -> None:
    """Insert the result of a job (in the caller's transaction)."""
    connection.execute(
        _INSERT,
        {
            "id": uuid.uuid4(),
            "job_id": job_id,
            "article_id": article_id,
            "content_hash": content_hash,
            "provider": result.provider,
            "model": result.model,
            "prompt_version": result.prompt_version,
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "document": result.model_dump(mode="json"),
            "created_at": utcnow(),
        },
    )


def load_result(document: dict[str, Any] | None) -> ResultPublic | None:
    return None if document is None else ResultPublic.model_validate(document)


def result_of_job(connection: Connection, job_id: uuid.UUID) -> ResultPublic | None:
    return load_result(connection.execute(_OF_JOB, {"job_id": job_id}).scalar())


def latest_result_of_article(connection: Connection, article_id: uuid.UUID) -> ResultPublic | None:
    return load_result(connection.execute(_LATEST_OF_ARTICLE, {"article_id": article_id}).scalar())


def reusable_result(
    connection: Connection, content_hash: str, provider: str, model: str, prompt_version: str
) -> ResultPublic | None:
    """A stored result for the same clean text, provider, model and prompt version."""
    params = {
        "text_hash": content_hash,
        "label_provider": provider,
        "label_model": model,
        "label_prompt_version": prompt_version,
    }
    return load_result(connection.execute(_REUSABLE, params).scalar())
