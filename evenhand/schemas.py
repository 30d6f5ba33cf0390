"""Public shapes of a job and its result, as the API serves them (see DESIGN.md, "The result")."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel

from evenhand.models import JobStatus


class EvidencePublic(BaseModel):
    quote: str
    start: int
    end: int
    verified: bool
    score: float


class ArgumentPointPublic(BaseModel):
    claim: str
    speaker: str
    premises: list[str]
    evidence: list[EvidencePublic]


class LoadedTerm(BaseModel):
    term: str
    start: int
    end: int


class UsagePublic(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    llm_calls: int


class GroundingPublic(BaseModel):
    quotes: int
    verified: int


class CleaningPublic(BaseModel):
    chars_in: int
    chars_kept: int
    lines_removed: int


class NeutralityPublic(BaseModel):
    # loaded terms left in the summary outside quotes and attributed speech (offsets into summary)
    summary_loaded_terms: list[LoadedTerm]


class ResultPublic(BaseModel):
    article_type: Literal["opinion", "news", "analysis", "other"]
    thesis: str
    summary: str
    argument_points: list[ArgumentPointPublic]
    loaded_language: list[LoadedTerm]
    provider: str
    model: str
    prompt_version: str
    usage: UsagePublic
    grounding: GroundingPublic
    cleaning: CleaningPublic
    neutrality: NeutralityPublic


class JobError(BaseModel):
    code: str
    message: str


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# A timestamp as the API shows it: always with its zone (RFC 3339 date-time).
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class JobPublic(BaseModel):
    id: uuid.UUID
    article_id: uuid.UUID
    status: JobStatus
    attempts: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    error: JobError | None = None
    result: ResultPublic | None = None
