"""HTTP request and response bodies of the v1 API."""

import uuid
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError
from sqlmodel.main import SQLModelConfig

from kernel.addresses import URLNotAllowed, vet_url
from kernel.config import get_settings
from kernel.models import ArticleBase, BatchMode, JobStatus
from kernel.schemas import EXAMPLE_JOB, EXAMPLE_RESULT, JobPublic, ResultPublic, UtcDateTime

SUBMIT_EXAMPLE: JsonDict = {
    "text": "The council voted to close the library. Critics say the decision was rushed.",
    "title": "Library closure",
    "source": "Example Gazette",
    "language": "en",
}


# In the schema only (JSON Schema regexes have no inline flags); the validator says it in words
_HTTP_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://"
_URL_ADVICE = {
    "url": "send the address of a page on the public internet, or send the page itself as "
    "'html' or its text as 'text'",
    "callback_url": "send the address of a webhook receiver on the public internet",
}


def check_fetchable(value: str | None, info: ValidationInfo) -> str | None:
    """Refuse at once a URL the worker would refuse without resolving it (kernel.addresses)."""
    if value is None:
        return None
    # from the settings, not a validation context: SQLModel's model_validate_json drops it
    allow_private = get_settings().fetch_allow_private
    try:
        vet_url(value, allow_private=allow_private)
    except URLNotAllowed as exc:
        field = info.field_name or "url"
        raise PydanticCustomError(
            "url_not_allowed",
            "evenhand will not fetch this address: {reason}; {advice}",
            {"reason": str(exc), "advice": _URL_ADVICE.get(field, _URL_ADVICE["url"])},
        ) from None
    return value


class ArticleCreate(ArticleBase):
    """An article to summarize: exactly one of `text`, `html` or `url`."""

    model_config = SQLModelConfig(extra="forbid", json_schema_extra={"examples": [SUBMIT_EXAMPLE]})

    text: str | None = Field(
        default=None, description="The article as plain (possibly scraped) text"
    )
    html: str | None = Field(
        default=None, description="A whole HTML page; the main content is extracted"
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"pattern": _HTTP_URL_PATTERN},
        description="An http(s) address the worker fetches (public addresses only)",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"pattern": _HTTP_URL_PATTERN},
        description="POSTed the finished job, signed (see the README); public addresses only",
    )
    # `metadata` would shadow SQLModel's own class attribute, hence the alias
    meta: dict[str, Any] | None = Field(
        default=None, alias="metadata", description="Stored and returned as given"
    )

    _urls_are_fetchable = field_validator("url", "callback_url")(check_fetchable)

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        given = [name for name in ("text", "html", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            shown = " and ".join(f"'{name}'" for name in given) if given else "none"
            raise PydanticCustomError(
                "one_input",
                "send exactly one of 'text', 'html' or 'url' (this request has {shown})",
                {"shown": shown},
            )
        return self


class ArticleAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {k: EXAMPLE_JOB[k] for k in ("article_id",)}
                | {"job_id": EXAMPLE_JOB["id"], "status": "queued"}
            ]
        }
    )

    job_id: uuid.UUID
    article_id: uuid.UUID
    status: JobStatus


class ArticlePublic(ArticleBase):
    model_config = SQLModelConfig(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_JOB["article_id"],
                    "title": "The harbour toll",
                    "source": "Example Gazette",
                    "url": None,
                    "language": "en",
                    "input_kind": "text",
                    "clean_text": "The harbour tunnel toll ...",
                    "content_hash": "9f2c...",
                    "metadata": {"section": "opinion"},
                    "created_at": "2026-11-27T09:00:00Z",
                    "result": EXAMPLE_RESULT,
                }
            ]
        }
    )

    id: uuid.UUID
    input_kind: str
    clean_text: str | None = Field(description="Set once a job has cleaned the article")
    content_hash: str | None
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"pattern": _HTTP_URL_PATTERN},
        description="POSTed the finished job, signed (see the README); public addresses only",
    )
    meta: dict[str, Any] | None = Field(alias="metadata")
    created_at: UtcDateTime
    result: ResultPublic | None = Field(description="The article's latest result, if any")


class JobPage(BaseModel):
    """A page of the caller's jobs, newest first, without their results."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [EXAMPLE_JOB | {"result": None}], "next_cursor": "MjAyNi0xMS0yN1Q..."}
            ]
        }
    )

    items: list[JobPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class BatchCreate(BaseModel):
    """Many articles at once (at most EVENHAND_MAX_BATCH), each becoming its own job."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"articles": [SUBMIT_EXAMPLE, {"url": "https://example.com/a"}]}]
        },
    )

    articles: list[ArticleCreate] = Field(min_length=1)
    mode: BatchMode = Field(
        BatchMode.live,
        description='"live": each job calls the LLM as it runs. "provider_batch": the jobs\' '
        "LLM calls go through the provider's Batch API (about half the price; the jobs end when "
        "the provider's batch does, within its completion window)",
    )


class ProviderRoundPublic(BaseModel):
    """One round of a provider_batch batch at the provider: its jobs' requests, sent as one."""

    round: int
    status: str = Field(
        description='"submitting" until the provider has it, then the provider\'s own status '
        "(validating, in_progress, finalizing, completed, expired, failed, cancelled)"
    )
    provider_id: str | None = Field(description="The provider's batch id")
    requests: int
    error: str | None = Field(description="The provider's reason, when it failed the round")
    created_at: UtcDateTime
    finished_at: UtcDateTime | None


class BatchPublic(BaseModel):
    """A batch's progress: how many of its jobs are in each status, and the jobs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5c0b9f4e-2d7a-4f3b-8e6c-1a2b3c4d5e6f",
                    "created_at": "2026-11-27T09:00:00Z",
                    "mode": "live",
                    "total": 2,
                    "counts": {
                        "queued": 1,
                        "running": 0,
                        "succeeded": 1,
                        "failed": 0,
                        "canceled": 0,
                    },
                    "finished": False,
                    "jobs": [
                        {
                            "job_id": EXAMPLE_JOB["id"],
                            "article_id": EXAMPLE_JOB["article_id"],
                            "status": "succeeded",
                        }
                    ],
                }
            ]
        }
    )

    id: uuid.UUID
    created_at: UtcDateTime
    mode: BatchMode
    total: int
    counts: dict[str, int] = Field(description="Jobs per status")
    finished: bool = Field(description="Every job succeeded, failed or was canceled")
    jobs: list[ArticleAccepted]
    provider_batches: list[ProviderRoundPublic] = Field(
        default_factory=list,
        description="provider_batch mode: each round of requests sent to the provider's Batch "
        "API, oldest first",
    )
