"""What the summarizer (an LLM or the extractive provider) hands back, before grounding.

These pydantic models are the single source of the JSON schema sent to the LLM as a strict
`json_schema` response format: `extra="forbid"` and no defaults make pydantic's own schema
strict-mode compatible (every property required, no additional properties).

Length bounds guard against a hijacked or runaway answer: lists carry `maxItems` (part of strict
mode); string lengths are checked after parsing (`Bounded`), since not every provider accepts
`maxLength` in a strict schema. An answer out of bounds gets the repair round like any invalid one.
"""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        return value

    return AfterValidator(check)


Short = Annotated[str, _at_most(300)]
Sentence = Annotated[str, _at_most(1_500)]
Quote = Annotated[str, _at_most(3_000)]
Summary = Annotated[str, _at_most(6_000)]

ArticleType = Literal["opinion", "news", "analysis", "other"]


class DraftEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote: Quote = Field(description="A verbatim span copied from the article text")


class DraftPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: Sentence = Field(description="The claim, stated neutrally")
    speaker: Short = Field(description='Who holds the claim: "the author", a named source, ...')
    premises: list[Sentence] = Field(max_length=10, description="The reasons given for the claim")
    evidence: list[DraftEvidence] = Field(
        max_length=10, description="Verbatim quotes from the article"
    )


class SummaryFields(BaseModel):
    """What every answer that summarizes a whole article carries."""

    model_config = ConfigDict(extra="forbid")

    article_type: ArticleType
    thesis: Sentence = Field(description="The article's main claim, attributed to its holder")
    summary: Summary = Field(description="A neutral summary that attributes every opinion")


class Draft(SummaryFields):
    argument_points: list[DraftPoint] = Field(max_length=40)
    loaded_language: list[Short] = Field(
        max_length=100, description="Loaded or emotive terms used in the article"
    )


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0

    def add(self, other: "Usage") -> "Usage":
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.llm_calls += other.llm_calls
        return self


class MapDraft(BaseModel):
    """What the LLM returns for one part of a long article (map step)."""

    model_config = ConfigDict(extra="forbid")

    argument_points: list[DraftPoint] = Field(max_length=40)
    loaded_language: list[Short] = Field(
        max_length=100, description="Loaded or emotive terms used in this part"
    )


class DuplicateGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[int] = Field(description="Numbers of points that make the same claim")


class ReduceDraft(SummaryFields):
    """What the LLM returns when it combines the parts' points (reduce step)."""

    duplicate_groups: list[DuplicateGroup]
