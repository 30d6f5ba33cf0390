"""What the summarizer (an LLM or the extractive provider) hands back, before grounding.

These pydantic models are the single source of the JSON schema sent to the LLM as a strict
`json_schema` response format: `extra="forbid"` and no defaults make pydantic's own schema
strict-mode compatible (every property required, no additional properties).

Length bounds guard against a hijacked or runaway answer: lists carry `maxItems` (part of strict
mode); string lengths are checked after parsing (`Bounded`), since not every provider accepts
`maxLength` in a strict schema. An answer out of bounds gets the repair round like any invalid one.

`parse_answer` reads what real models send, not only what a strict server enforces: JSON in a code
fence or among prose, after a `<think>` block; unknown keys dropped; evidence given as bare
strings. A missing non-essential field (`OPTIONAL`) gets its default and is named in the answer's
`defaulted`; what the result cannot do without (summary, thesis, claims with their speakers,
argument points of an article that argues) makes the answer unusable, with a message that says
what is missing.
"""

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError


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


class Answer(BaseModel):
    """An LLM answer; `defaulted` names the fields the model left out and `parse_answer` filled."""

    model_config = ConfigDict(extra="forbid")

    _defaulted: list[str] = PrivateAttr(default_factory=list)

    @property
    def defaulted(self) -> list[str]:
        return list(self._defaulted)

    def mark_defaulted(self, *names: str) -> None:
        """Add to `defaulted` (an answer put together from others carries theirs)."""
        self._defaulted = list(dict.fromkeys([*self._defaulted, *names]))


class DraftEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote: Quote = Field(description="A verbatim span copied from the article text")


class DraftPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: Sentence = Field(description="The claim, stated neutrally")
    speaker: Short = Field(description='Who holds the claim: "the author", a named source, ...')
    premises: list[Sentence] = Field(max_length=3, description="The reasons given for the claim")
    evidence: list[DraftEvidence] = Field(
        max_length=3, description="Verbatim quotes from the article that support the claim"
    )


class SummaryFields(Answer):
    """What every answer that summarizes a whole article carries."""

    article_type: ArticleType
    thesis: Sentence = Field(description="The article's main claim, attributed to its holder")
    summary: Summary = Field(description="A neutral summary that attributes every opinion")


# The lists' bounds are part of the JSON schema: a server that enforces it (llama.cpp's grammar)
# cannot loop on one list, which small models otherwise do until the output limit. Longer lists
# in an answer are cut to them (`_filled`), not refused.
class Draft(SummaryFields):
    argument_points: list[DraftPoint] = Field(max_length=8)
    loaded_language: list[Short] = Field(
        max_length=12, description="Loaded or emotive terms used in the article"
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


class MapDraft(Answer):
    """What the LLM returns for one part of a long article (map step)."""

    argument_points: list[DraftPoint] = Field(max_length=8)
    loaded_language: list[Short] = Field(
        max_length=12, description="Loaded or emotive terms used in this part"
    )


class DuplicateGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[int] = Field(description="Numbers of points that make the same claim")


class ReduceDraft(SummaryFields):
    """What the LLM returns when it combines the parts' points (reduce step)."""

    duplicate_groups: list[DuplicateGroup]


# --- reading real answers -------------------------------------------------------------------------

AnswerT = TypeVar("AnswerT", bound=Answer)

# Left out by a model, these get a default: the result stays useful without them.
OPTIONAL: dict[str, Any] = {
    "article_type": "other",
    "argument_points": [],  # only when the article does not argue: see _missing_essentials
    "loaded_language": [],
    "duplicate_groups": [],
    "premises": [],
    "evidence": [],
}
ARGUING_TYPES = ("opinion", "analysis")

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S | re.I)
_THINK_OPEN = re.compile(r"<think>", re.I)
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\r?\n(.*?)```", re.S)


class UnusableAnswer(ValueError):
    """Why an answer cannot be used: `code` is a failure code, `problem` says what to fix."""

    def __init__(self, code: str, problem: str) -> None:
        super().__init__(problem)
        self.code = code
        self.problem = problem


def answer_json(content: str) -> Any:
    """The JSON object in a model's answer: alone, in a code fence or among prose, after any
    `<think>` reasoning. Hand-rolled on `json.JSONDecoder.raw_decode`: no library reads an object
    out of surrounding prose and also tells a cut-off one from a malformed one."""
    text = _THINK_BLOCK.sub("", content)
    if "</think>" in text.lower():  # the opening tag was part of the chat template
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    if opened := _THINK_OPEN.search(text):  # still thinking when the answer ended
        text = text[: opened.start()]
    if fenced := _FENCE.search(text):
        text = fenced.group(1)
    decoder = json.JSONDecoder()
    start = text.find("{")
    if start < 0:
        if text.strip():
            raise UnusableAnswer("llm_invalid_output", "The answer holds no JSON object.")
        raise UnusableAnswer("llm_truncated", "The answer is empty or ended before its JSON.")
    while start >= 0:
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if _unclosed(text, start):
                raise UnusableAnswer(
                    "llm_truncated",
                    "The JSON object is cut off before its end; answer more briefly.",
                ) from None
            start = text.find("{", exc.pos)  # not at `{` inside the broken object: at prose after
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise UnusableAnswer("llm_invalid_output", "The answer holds no valid JSON object.")


def _unclosed(text: str, start: int) -> bool:
    """Whether the object opening at `start` is still open (or inside a string) where the text
    ends: an answer cut off, not a malformed one. JSONDecodeError only says where parsing failed,
    which for a cut-off string is where the string began."""
    depth, in_string, escaped = 0, False, False
    for char in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return False
    return True


def _max_items(model: type[BaseModel], name: str) -> int | None:
    """The most items field `name` of `model` may hold, if it is bounded."""
    bounds = [m.max_length for m in model.model_fields[name].metadata if hasattr(m, "max_length")]
    return min(bounds) if bounds else None


def _filled(value: Any, model: type[BaseModel], defaulted: list[str]) -> Any:
    """`value` with unknown keys dropped and missing optional fields defaulted (named in
    `defaulted`); lists of points and evidence are filled the same way."""
    if not isinstance(value, dict):
        return value
    fields = model.model_fields
    out = {key: item for key, item in value.items() if key in fields and item is not None}
    for name in fields:
        if name not in out and name in OPTIONAL:
            out[name] = json.loads(json.dumps(OPTIONAL[name]))  # a fresh copy of the default
            defaulted.append(name)
    if isinstance(article_type := out.get("article_type"), str):
        folded = article_type.strip().lower()
        if folded not in ("opinion", "news", "analysis", "other"):
            folded = "other"
            defaulted.append("article_type")
        out["article_type"] = folded
    for name, items in out.items():
        if isinstance(items, list) and (limit := _max_items(model, name)) is not None:
            out[name] = items[:limit]
    if isinstance(points := out.get("argument_points"), list):
        out["argument_points"] = [_filled(p, DraftPoint, defaulted) for p in points]
    if isinstance(evidence := out.get("evidence"), list):
        out["evidence"] = [
            {"quote": item} if isinstance(item, str) else _filled(item, DraftEvidence, defaulted)
            for item in evidence
        ]
    return out


def _missing_essentials(data: dict[str, Any], output: type[Answer]) -> list[str]:
    fields = output.model_fields
    missing: list[str] = [
        name
        for name in ("thesis", "summary")
        if name in fields and not (isinstance(data.get(name), str) and data[name].strip())
    ]
    if "argument_points" in fields and output is not MapDraft:
        points = data.get("argument_points")
        article_type = str(data.get("article_type", "")).strip().lower()
        argues = article_type in ARGUING_TYPES or data.get("article_type") is None
        if argues and not (isinstance(points, list) and points):
            missing.append("argument_points (at least one, as the article argues)")
    for index, point in enumerate(data.get("argument_points") or []):
        if isinstance(point, dict):
            for name in ("claim", "speaker"):
                if not (isinstance(point.get(name), str) and point[name].strip()):
                    missing.append(f"argument_points[{index}].{name}")
    return missing


def parse_answer(content: str, output: type[AnswerT]) -> AnswerT:
    """A model's answer as `output`, read leniently; UnusableAnswer when it cannot be used."""
    data = answer_json(content)
    missing = _missing_essentials(data, output)
    if missing:
        raise UnusableAnswer("llm_invalid_output", f"The answer lacks {', '.join(missing)}.")
    defaulted: list[str] = []
    filled = _filled(data, output, defaulted)
    try:
        answer = output.model_validate(filled)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the answer"
        raise UnusableAnswer(
            "llm_invalid_output",
            f"The answer does not match the JSON schema ({where}: {first['msg']}).",
        ) from None
    answer._defaulted = list(dict.fromkeys(defaulted))
    return answer
