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


# --- stories --------------------------------------------------------------------------------------

_A, _B, _C = (
    "8d1f3c3e-1a7b-4c55-b0de-2a9e6b1f7c42",
    "1c9e2b7a-5d3f-4e61-9a8b-7c6d5e4f3a21",
    "3f4e5d6c-7b8a-4912-a3b4-c5d6e7f80912",
)
EXAMPLE_STORY_RESULT: JsonDict = {
    "method": "llm",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "prompt_version": "story-v1",
    "similarity_threshold": None,
    "outlets": [
        {"article_id": _A, "job_id": EXAMPLE_JOB["id"], "title": "Council votes to close Main "
         "Street", "source": "Harbor Gazette", "status": "succeeded", "error": None},
        {"article_id": _B, "job_id": "5c0b9f4e-2d7a-4f3b-8e6c-1a2b3c4d5e6f", "title": "Main "
         "Street belongs to walkers", "source": "City Voice", "status": "succeeded", "error": None},
        {"article_id": _C, "job_id": "6d1c0a5f-3e8b-4a4c-9f7d-2b3c4d5e6f70", "title": None,
         "source": "Example Blog", "status": "failed", "error": {"code": "no_article_text",
         "message": "Nothing was left after removing boilerplate."}},
    ],
    "clusters": [
        {
            "id": "c1",
            "claim": "The closure costs 4.2 million euros.",
            "article_ids": [_A, _B],
            "speakers": ["the city's budget office", "the author"],
            "members": [
                {"article_id": _A, "claim": "The plan costs 4.2 million euros over three years.",
                 "speaker": "the city's budget office", "quotes": [{"article_id": _A, "quote":
                 "The plan will cost 4.2 million euros over three years", "start": 214,
                 "end": 267, "verified": True, "score": 100.0}]},
                {"article_id": _B, "claim": "The cost of 4.2 million euros is modest.",
                 "speaker": "the author", "quotes": []},
            ],
        }
    ],
    "shared": ["c1"],
    "unique": [],
    "contradictions": [
        {"clusters": ["c2", "c3"], "article_ids": [_B, _A],
         "explanation": "One says the pilot raised sales, the other that it did not."}
    ],
    "coverage": [
        {"article_id": _A, "covers": ["c1", "c3"], "blindspots": ["c2"]},
        {"article_id": _B, "covers": ["c1", "c2"], "blindspots": ["c3"]},
    ],
    "synthesis": "According to Harbor Gazette and City Voice, the closure costs 4.2 million euros.",
    "failed": [
        {"article_id": _C, "job_id": "6d1c0a5f-3e8b-4a4c-9f7d-2b3c4d5e6f70", "title": None,
         "source": "Example Blog", "status": "failed", "error": {"code": "no_article_text",
         "message": "Nothing was left after removing boilerplate."}}
    ],
    "grounding": {"quotes": 1, "verified": 1},
    "usage": {"prompt_tokens": 2100, "completion_tokens": 420, "llm_calls": 1},
}  # fmt: skip


class StoryOutlet(BaseModel):
    """One article of a story and how its job ended."""

    article_id: uuid.UUID
    job_id: uuid.UUID
    title: str | None
    source: str | None
    status: JobStatus
    error: JobError | None = None


class StoryQuote(BaseModel):
    """A quote located by the worker in its own article's clean text (offsets into it)."""

    article_id: uuid.UUID
    quote: str
    start: int
    end: int
    verified: bool
    score: float


class ClusterMember(BaseModel):
    """One article's wording of a cluster's claim."""

    article_id: uuid.UUID
    claim: str
    speaker: str
    quotes: list[StoryQuote]


class ClaimCluster(BaseModel):
    """The same claim, in different words, across the articles that make it."""

    id: str  # "c1", "c2", ... in the order of the result
    claim: str
    article_ids: list[uuid.UUID]  # the outlets that make it, in the story's order
    speakers: list[str]
    members: list[ClusterMember]


class Contradiction(BaseModel):
    """Two clusters whose claims cannot both be true."""

    clusters: list[str]  # two cluster ids
    article_ids: list[uuid.UUID]  # the outlets on either side
    explanation: str


class OutletCoverage(BaseModel):
    article_id: uuid.UUID
    covers: list[str]  # cluster ids the outlet makes
    blindspots: list[str]  # cluster ids other outlets make and it leaves out


class StoryGrounding(BaseModel):
    quotes: int
    verified: int


class StoryResultPublic(BaseModel):
    """A story's comparison: stored whole as one JSON document (kernel.stories)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_STORY_RESULT]})

    method: Literal["llm", "lexical"]  # who matched the claims: the LLM, or lexical similarity
    provider: str
    model: str
    prompt_version: str
    similarity_threshold: float | None = None  # the lexical method's token-set ratio cut-off
    outlets: list[StoryOutlet]
    clusters: list[ClaimCluster]
    shared: list[str]  # clusters two or more outlets make
    unique: list[str]  # clusters only one outlet makes
    contradictions: list[Contradiction]
    coverage: list[OutletCoverage]
    synthesis: str  # neutral, every claim attributed to its outlets
    failed: list[StoryOutlet]  # articles whose job failed or was canceled, with why
    grounding: StoryGrounding
    usage: UsagePublic
