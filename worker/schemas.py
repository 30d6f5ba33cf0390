"""What the summarizer (an LLM or the extractive provider) hands back, before grounding.

These pydantic models are the single source of the JSON schema sent to the LLM as a strict
`json_schema` response format: `extra="forbid"` and no defaults make pydantic's own schema
strict-mode compatible (every property required, no additional properties).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ArticleType = Literal["opinion", "news", "analysis", "other"]


class DraftEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote: str = Field(description="A verbatim span copied from the article text")


class DraftPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: str = Field(description="The claim, stated neutrally")
    speaker: str = Field(description='Who holds the claim: "the author", a named source, ...')
    premises: list[str] = Field(description="The reasons given for the claim")
    evidence: list[DraftEvidence] = Field(description="Verbatim quotes from the article")


class SummaryFields(BaseModel):
    """What every answer that summarizes a whole article carries."""

    model_config = ConfigDict(extra="forbid")

    article_type: ArticleType
    thesis: str = Field(description="The article's main claim, attributed to its holder")
    summary: str = Field(description="A neutral summary that attributes every opinion")


class Draft(SummaryFields):
    argument_points: list[DraftPoint]
    loaded_language: list[str] = Field(description="Loaded or emotive terms used in the article")


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

    argument_points: list[DraftPoint]
    loaded_language: list[str] = Field(description="Loaded or emotive terms used in this part")


class DuplicateGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[int] = Field(description="Numbers of points that make the same claim")


class ReduceDraft(SummaryFields):
    """What the LLM returns when it combines the parts' points (reduce step)."""

    duplicate_groups: list[DuplicateGroup]
