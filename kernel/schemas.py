"""Public shapes of a job and its result, as the API serves them (README.md, "The result")."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.json_schema import JsonDict

from kernel.models import JobStatus

# Examples for the OpenAPI schema (shown in /docs).
EXAMPLE_RESULT: JsonDict = {
    "article_type": "opinion",
    "thesis": "The author argues that the harbour toll burdens night-shift workers most.",
    "summary": "The author argues that the new harbour tunnel toll falls hardest on night-shift "
    "workers. According to the council, the toll pays for repairs.",
    "argument_points": [
        {
            "claim": "The toll is regressive.",
            "speaker": "the author",
            "premises": ["Night-shift workers have no transit alternative."],
            "evidence": [
                {
                    "quote": "the night bus stops running at eleven",
                    "start": 412,
                    "end": 449,
                    "verified": True,
                    "score": 100.0,
                    "support": "supports",
                }
            ],
        }
    ],
    "loaded_language": [{"term": "boondoggle", "start": 88, "end": 98}],
    "provider": "openai",
    "model": "gpt-4o-mini",
    "prompt_version": "summary-v2",
    "usage": {"prompt_tokens": 1450, "completion_tokens": 390, "llm_calls": 1},
    "grounding": {"quotes": 1, "verified": 1, "supports": 1, "partial": 0, "unrelated": 0},
    "cleaning": {"chars_in": 5120, "chars_kept": 4388, "lines_removed": 17},
    "neutrality": {"summary_loaded_terms": []},
    "defaulted": [],
}
EXAMPLE_JOB: JsonDict = {
    "id": "0b6e7a52-4a3c-4d47-9f0e-3f1d2f6c9a10",
    "article_id": "8d1f3c3e-1a7b-4c55-b0de-2a9e6b1f7c42",
    "status": "succeeded",
    "attempts": 1,
    "created_at": "2026-11-27T09:00:00Z",
    "started_at": "2026-11-27T09:00:01Z",
    "finished_at": "2026-11-27T09:00:07Z",
    "error": None,
    "result": EXAMPLE_RESULT,
}


class EvidencePublic(BaseModel):
    quote: str
    start: int
    end: int
    verified: bool
    score: float
    # whether the quote supports its point's claim, judged by the LLM; None: not judged (the
    # offline provider, an unverified quote, or the check turned off or failed)
    support: Literal["supports", "partial", "unrelated"] | None = None


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
    # support verdicts of the verified quotes; the rest of `verified` was not judged
    supports: int = 0
    partial: int = 0
    unrelated: int = 0


class CleaningPublic(BaseModel):
    chars_in: int
    chars_kept: int
    lines_removed: int


class NeutralityPublic(BaseModel):
    # loaded terms left in the summary outside quotes and attributed speech (offsets into summary)
    summary_loaded_terms: list[LoadedTerm]


class ResultPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RESULT]})

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
    # the fields the model left out and evenhand filled with their empty default
    defaulted: list[str] = []


class JobError(BaseModel):
    code: str
    message: str


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# A timestamp as the API shows it: always with its zone (RFC 3339 date-time).
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class JobPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_JOB]})

    id: uuid.UUID
    article_id: uuid.UUID
    status: JobStatus
    attempts: int
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    error: JobError | None = None
    result: ResultPublic | None = None
