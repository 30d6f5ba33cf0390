"""The `openai` provider: chat.completions with a strict json_schema response format built from
our pydantic models, and what it takes to survive real OpenAI-compatible servers.

- Retries are ours alone (the SDK's are switched off, so the two cannot multiply): connection
  errors, timeouts, 408/409/429 (honouring Retry-After), 5xx and malformed bodies are retried with
  exponential backoff and full jitter, at most `EVENHAND_LLM_RETRIES` times and never past the
  job's deadline (`EVENHAND_JOB_TIME_LIMIT`). Permanent errors (401/403, unknown model, bad
  requests, context length, insufficient_quota) fail at once. Either way the job ends with a
  stable code and a message that carries the provider's own status and reason.
- A refusal of what we asked for is never retried: the request adapts instead. A server that
  rejects the response format (400/422, or a 500 whose body names it, as llama-cpp-python's does)
  is asked again one step down `MODES`: strict json_schema, then json_object with the schema in
  the form llama.cpp and llama-cpp-python enforce, then bare json_object, then the schema in the
  prompt alone. A server that rejects `max_completion_tokens` gets `max_tokens`. What a server
  accepts is remembered per (base URL, model) for the life of the process and logged once.
  `EVENHAND_RESPONSE_FORMAT=json_object` starts at the second step.
- An answer that is unusable (see `worker.schemas.parse_answer`: no JSON, essentials missing), a
  refusal or a truncated answer gets one repair round; `Conversation.revise` lets the pipeline ask
  for one more round (unverifiable quotes, loaded wording).
- In provider_batch mode (`answering_from`), no call goes out: each is answered from the job's
  book of answers that the provider's Batch API gave (kernel.provider_batches), and a call not in
  the book is recorded and ends the run with `AwaitingAnswers`, for the job to park.
"""

import hashlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
import structlog
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from kernel.config import Settings
from kernel.metrics import LLM_LATENCY, LLM_RETRIES, LLM_TOKENS
from kernel.provider_batches import ProviderAnswer
from worker.errors import PipelineError
from worker.prompts import Messages, with_schema
from worker.schemas import Answer, UnusableAnswer, Usage, parse_answer

log = structlog.get_logger(__name__)

REPAIR_ROUNDS = 1
# opentelemetry-util-genai's switches for recording message content in spans and events
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
COMPLETION_HOOK = "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK"


class LLM:
    """A process-wide handle on the provider: the client (with its connection pool) and how to
    talk to it. Immutable once made, so jobs running in parallel share it safely."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        timeout: float,
        retries: int,
        backoff_base: float,
        backoff_max: float,
        model: str,
        max_output_tokens: int,
        json_schema: bool,
    ) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        self.timeout = timeout
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.model = model
        self.max_output_tokens = max_output_tokens
        self.json_schema = json_schema


@lru_cache
def _cached_llm(**config: Any) -> LLM:
    return LLM(**config)


def get_llm(settings: Settings) -> LLM:
    """One LLM handle per process and configuration."""
    return _cached_llm(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused",
        timeout=settings.llm_timeout,
        retries=settings.llm_retries,
        backoff_base=settings.llm_backoff_base,
        backoff_max=settings.llm_backoff_max,
        model=settings.model,
        max_output_tokens=settings.llm_max_output_tokens,
        json_schema=settings.response_format == "json_schema",
    )


def trace_llm_calls() -> None:
    """Give every chat completion a span (GenAI semantic conventions: `chat {model}`, token usage,
    `error.type`), by OpenTelemetry's own instrumentation of the SDK. Called only once tracing is
    on; the spans never carry prompts or answers: they quote the article."""
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    os.environ[CAPTURE_CONTENT] = "NO_CONTENT"
    os.environ.pop(COMPLETION_HOOK, None)  # a hook would be handed prompts and answers
    instrumentor = OpenAIInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


class Deadline:
    """The time a job may still spend, and whether its claim was lost (canceled meanwhile)."""

    def __init__(self, seconds: float, lost: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.lost = lost or threading.Event()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if self.lost.is_set():
            raise PipelineError("job_canceled", "The job was canceled while it ran.")
        if self.remaining() <= 0:
            raise PipelineError(
                "job_timeout",
                f"The job ran out of its {self.seconds:.0f} seconds (EVENHAND_JOB_TIME_LIMIT).",
            )

    def sleep(self, seconds: float) -> None:
        """Wait, waking early when the claim is lost."""
        self.lost.wait(seconds)


def retry_reason(exc: Exception) -> str | None:
    """Why an error is worth another try, or None for a permanent one."""
    match exc:
        case openai.APITimeoutError():
            return "timeout"
        case openai.APIConnectionError():
            return "connection"
        case openai.RateLimitError() if _error_code(exc) != "insufficient_quota":
            return "rate_limited"
        case openai.APIStatusError() if refused_feature(exc) is not None:
            return None  # asking again the same way gets the same refusal
        case openai.APIStatusError() if exc.status_code in (408, 409) or exc.status_code >= 500:
            return f"status_{exc.status_code}"
        case openai.APIResponseValidationError() | json.JSONDecodeError():
            return "malformed"
    return None


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if value := headers.get("retry-after-ms"):
            return float(value) / 1000
        if value := headers.get("retry-after"):
            return float(value)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None


@lru_cache(maxsize=8)
def _schema_json(output: type[BaseModel]) -> str:
    return json.dumps(output.model_json_schema())


def output_schema(output: type[BaseModel]) -> dict[str, Any]:
    """`output`'s JSON schema. pydantic generates it anew on every call, which costs far more CPU
    than parsing a cached copy; the copy still gives every caller a dict of its own."""
    schema: dict[str, Any] = json.loads(_schema_json(output))
    return schema


def strict_format(output: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": output.__name__.lower(),
            "strict": True,
            "schema": output_schema(output),
        },
    }


# --- what a server accepts ------------------------------------------------------------------------

# How the answer's JSON schema is asked for, best first; a refused mode moves one step down.
MODES = ("json_schema", "json_object_schema", "json_object", "prompt")
TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")  # the second for servers predating it


@dataclass(frozen=True)
class Dialect:
    """What one server accepts for one model, as learnt from its refusals."""

    mode: int = 0  # index into MODES
    token_param: str = TOKEN_PARAMS[0]


_dialects: dict[tuple[str, str], Dialect] = {}
_dialects_lock = threading.Lock()


def _dialect_key(llm: "LLM") -> tuple[str, str]:
    return str(llm.client.base_url), llm.model


def dialect(llm: "LLM") -> Dialect:
    """What the process has learnt about `llm`'s server so far."""
    start = Dialect(mode=0 if llm.json_schema else 1)
    with _dialects_lock:
        learnt = _dialects.get(_dialect_key(llm), start)
    return Dialect(mode=max(start.mode, learnt.mode), token_param=learnt.token_param)


def learn(llm: "LLM", refused: Dialect, exc: openai.APIStatusError) -> bool:
    """Step away from what the server refused; False when there is nothing left to try."""
    feature = refused_feature(exc)
    change: dict[str, Any] = {}
    if feature == "max_completion_tokens" and refused.token_param == TOKEN_PARAMS[0]:
        change = {"token_param": TOKEN_PARAMS[1]}
    elif feature == "response_format" and refused.mode + 1 < len(MODES):
        change = {"mode": refused.mode + 1}
    if not change:
        return False
    key = _dialect_key(llm)
    with _dialects_lock:
        known = _dialects.get(key, Dialect())
        updated = Dialect(
            mode=max(known.mode, change.get("mode", 0)),
            token_param=change.get("token_param", known.token_param),
        )
        if updated == known:
            return True  # another job learnt it meanwhile
        _dialects[key] = updated
    # once per server, model and change: the process reuses what it learnt
    log.warning(
        "llm_server_adapted",
        refused=MODES[refused.mode] if "mode" in change else refused.token_param,
        fallback=MODES[updated.mode] if "mode" in change else updated.token_param,
        status=exc.status_code,
        model=llm.model,
    )
    return True


_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")


def refused_feature(exc: openai.APIStatusError) -> str | None:
    """What part of our request a server refused for good: "max_completion_tokens",
    "response_format" or None. A 500 counts when its body names the part (llama-cpp-python
    answers a request it cannot validate with 500)."""
    if exc.status_code not in (400, 422, 500) or "context_length" in _error_code(exc):
        return None
    text = f"{_error_code(exc)} {_error_text(exc)}".lower()
    if "max_completion_tokens" in text:
        return "max_completion_tokens"
    if any(word in text for word in _FORMAT_WORDS):
        return "response_format"
    return None


# --- the provider's own words in every failure ---------------------------------------------------

REASON_CHARS = 300
_SECRET_LIKE = re.compile(r"\b(?:sk|eh)-?[A-Za-z0-9_*-]{6,}|(?i:bearer)\s+\S+")
_SPACE = re.compile(r"\s+")


def _error_code(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    if not isinstance(error, dict):
        return ""
    return str(error.get("code") or error.get("type") or "")


def _error_text(exc: openai.APIError) -> str:
    """The provider's own explanation: the error body's message, else the whole body."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        return message if isinstance(message, str) else json.dumps(body)
    if isinstance(body, str) and body.strip():
        return body
    return exc.message


def _without_secrets(text: str, llm: "LLM | None") -> str:
    key = llm.client.api_key if llm is not None else ""
    if key and len(key) >= 4:
        text = text.replace(key, "[redacted]")
    return _SECRET_LIKE.sub("[redacted]", text)


def provider_reason(exc: Exception, llm: "LLM | None" = None) -> str:
    """What the provider said, for the job's message: status and the start of its error text,
    without keys."""
    match exc:
        case openai.APIStatusError():
            said = f"{exc.status_code} {_error_text(exc)}"
        case openai.APIConnectionError() if exc.__cause__ is not None:
            said = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        case _:
            said = str(exc)
    said = _without_secrets(_SPACE.sub(" ", said).strip(), llm)
    if len(said) > REASON_CHARS:
        said = said[:REASON_CHARS].rstrip() + "…"
    return f"The provider answered: {said}"


def _provider(llm: "LLM | None") -> str:
    """ "The LLM provider at URL", without any credentials the URL may carry."""
    if llm is None:
        return "The LLM provider"
    url = urlsplit(str(llm.client.base_url))
    port = f":{url.port}" if url.port else ""
    return f"The LLM provider at {url.scheme}://{url.hostname or ''}{port}{url.path}"


def _pipeline_error(exc: Exception, llm: "LLM | None" = None) -> PipelineError:
    """The SDK's errors, once retries are over or pointless, sorted into stable failure codes."""
    code, message = _classify(exc, llm)
    return PipelineError(code, f"{message} {provider_reason(exc, llm)}")


def _classify(exc: Exception, llm: "LLM | None") -> tuple[str, str]:
    model = llm.model if llm is not None else "the model"
    match exc:
        case openai.AuthenticationError() | openai.PermissionDeniedError():
            return "llm_auth_failed", "The LLM provider refused our credentials (OPENAI_API_KEY)."
        case openai.RateLimitError() if _error_code(exc) == "insufficient_quota":
            return "llm_quota_exceeded", "The LLM account has no quota left."
        case openai.RateLimitError():
            return "llm_rate_limited", "The LLM provider kept rate-limiting the request."
        case openai.APIStatusError() if "context_length" in _error_code(exc):
            return (
                "llm_context_length",
                "The text is too long for the model's context; lower EVENHAND_TOKEN_BUDGET.",
            )
        case openai.APIStatusError() if _error_code(exc) == "model_not_found" or (
            exc.status_code == 404 and "model" in _error_text(exc).lower()
        ):
            return (
                "llm_model_not_found",
                f"{_provider(llm)} does not serve the model {model!r}; set EVENHAND_MODEL to "
                "one it serves.",
            )
        case openai.NotFoundError():
            return (
                "llm_endpoint_not_found",
                f"{_provider(llm)} has no chat completions endpoint; check OPENAI_BASE_URL "
                "(OpenAI-compatible servers usually serve under /v1).",
            )
        case openai.APIStatusError() if exc.status_code in (400, 422) or refused_feature(exc):
            return "llm_bad_request", "The LLM provider rejected the request."
        case openai.APITimeoutError():
            return "llm_timeout", "The LLM provider did not answer in time."
        case openai.APIConnectionError():
            return "llm_unreachable", f"{_provider(llm)} could not be reached."
        case openai.APIResponseValidationError() | json.JSONDecodeError():
            # openai 3.x lets a non-JSON 200 body escape as a bare JSONDecodeError
            return "llm_malformed_response", "The LLM provider sent a malformed response."
        case openai.APIStatusError():
            return (
                "llm_server_error",
                f"The LLM provider kept failing with status {exc.status_code}.",
            )
    raise exc


def _judge(completion: Any, output: type[Answer]) -> tuple[Answer | None, str, str]:
    """The parsed answer, or why it is unusable (failure code, message for the repair round)."""
    if not getattr(completion, "choices", None):
        return None, "llm_malformed_response", "The answer had no choices."
    choice = completion.choices[0]
    if getattr(choice.message, "refusal", None):
        return None, "llm_refused", "The model refused to answer."
    if choice.finish_reason == "length":
        return (
            None,
            "llm_truncated",
            "The answer was cut off at the output token limit; answer more briefly.",
        )
    try:
        return parse_answer(choice.message.content or "", output), "", ""
    except UnusableAnswer as exc:
        return None, exc.code, exc.problem


# --- provider_batch mode: answers from the provider's Batch API --------------------------------


class AwaitingAnswers(Exception):
    """The run asked what the provider's batch has not answered yet: the job parks until a
    round of its batch brings the answers (its book's `asked`)."""


@dataclass
class AnswerBook:
    """A provider_batch job's answers by request key, and what its run asked without one."""

    answers: dict[str, ProviderAnswer]
    asked: dict[str, dict[str, Any]] = field(default_factory=dict)


_answer_book: ContextVar[AnswerBook | None] = ContextVar("evenhand_answer_book", default=None)


@contextmanager
def answering_from(book: AnswerBook) -> Iterator[AnswerBook]:
    """Within the block, this thread's LLM calls are answered from `book`, never sent."""
    token = _answer_book.set(book)
    try:
        yield book
    finally:
        _answer_book.reset(token)


def request_key(request: dict[str, Any]) -> str:
    """A request's identity: the same body asked again is answered by the same answer."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replayed_error(llm: LLM, error: dict[str, Any]) -> Exception:
    """A stored error as it would have been raised live: a status error the request adapts to
    or fails with (its provider's words kept), or the batch's own failure."""
    if isinstance(status := error.get("status"), int):
        body = error.get("body")
        url = f"{str(llm.client.base_url).rstrip('/')}/chat/completions"
        # the SDK's own mapping from status to exception class, so replayed errors are sorted
        # exactly like live ones
        return llm.client._make_status_error(
            f"Error code: {status} - {body}",
            body=body,
            response=httpx2.Response(status, request=httpx2.Request("POST", url)),
        )
    return PipelineError(
        str(error.get("code") or "provider_batch_failed"),
        str(error.get("message") or "The provider's batch gave no answer to this request."),
    )


class Conversation:
    """One exchange with the model about one text, counting usage across its calls."""

    def __init__(
        self,
        llm: LLM,
        messages: Messages,
        output: type[Answer],
        language: str | None,
        deadline: Deadline,
    ) -> None:
        self.llm = llm
        self.deadline = deadline
        self.messages = list(messages)
        self.output = output
        self.language = language
        self.usage = Usage()

    def _complete(self) -> Any:
        """One answer, asked the way this server accepts; a refusal adapts, never repeats."""
        while True:
            asked = dialect(self.llm)
            try:
                return self._create(self._request(asked))
            except openai.APIStatusError as exc:
                if not learn(self.llm, asked, exc):
                    raise _pipeline_error(exc, self.llm) from None

    def _request(self, asked: Dialect) -> dict[str, Any]:
        """The request body's messages, response format and output limit for `asked`."""
        mode = MODES[asked.mode]
        body: dict[str, Any] = {asked.token_param: self.llm.max_output_tokens}
        if mode == "json_schema":
            body["messages"] = self.messages
            body["response_format"] = strict_format(self.output)
            return body
        schema = output_schema(self.output)
        body["messages"] = [with_schema(self.messages[0], schema), *self.messages[1:]]
        if mode == "json_object_schema":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _create(self, body: dict[str, Any]) -> Any:
        """One completion, retrying what is worth retrying within the job's deadline; a permanent
        status error is raised as it is, for the caller to adapt to or report."""
        if (book := _answer_book.get()) is not None:
            return self._replay(book, body)
        limit = {k: v for k, v in body.items() if k in TOKEN_PARAMS}
        extra_body = {k: v for k, v in body.items() if k not in TOKEN_PARAMS}
        for attempt in range(self.llm.retries + 1):
            self.deadline.check()
            started = time.perf_counter()
            try:
                completion = self.llm.client.chat.completions.create(
                    model=self.llm.model,
                    messages=[],  # replaced by extra_body's
                    timeout=max(1.0, min(self.llm.timeout, self.deadline.remaining())),
                    # Sent as they are: as typed arguments the SDK would match every message and
                    # the format against its TypedDict unions, a CPU cost per call, only to send
                    # the same plain JSON.
                    extra_body=extra_body,
                    # typed, so the tracing instrumentation sees the limit in either dialect
                    **limit,
                )
            except (openai.APIError, json.JSONDecodeError) as exc:
                reason = retry_reason(exc)
                self._observe(started, reason or type(exc).__name__)
                if reason is None and isinstance(exc, openai.APIStatusError):
                    raise
                if reason is None or attempt == self.llm.retries:
                    raise _pipeline_error(exc, self.llm) from None
                backoff = min(self.llm.backoff_max, self.llm.backoff_base * 2**attempt)
                # jitter: retries of many jobs spread out
                wait = random.uniform(backoff / 2, backoff)
                if (retry_after := _retry_after(exc)) is not None:
                    wait = max(wait, min(retry_after, self.llm.backoff_max))
                if wait >= self.deadline.remaining():
                    raise _pipeline_error(exc, self.llm) from None
                log.warning("llm_retry", reason=reason, attempt=attempt + 1, wait=round(wait, 2))
                LLM_RETRIES.labels(reason).inc()
                self.deadline.sleep(wait)
                continue
            self._observe(started, "ok")
            return self._counted(completion)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _counted(self, completion: Any) -> Any:
        self.usage.llm_calls += 1
        if usage := getattr(completion, "usage", None):
            self.usage.prompt_tokens += usage.prompt_tokens or 0
            self.usage.completion_tokens += usage.completion_tokens or 0
            LLM_TOKENS.labels(self.llm.model, "prompt").inc(usage.prompt_tokens or 0)
            LLM_TOKENS.labels(self.llm.model, "completion").inc(usage.completion_tokens or 0)
        return completion

    def _replay(self, book: AnswerBook, body: dict[str, Any]) -> Any:
        """The provider batch's answer to this request; recorded and AwaitingAnswers if none."""
        request = {"model": self.llm.model, **body}
        key = request_key(request)
        said = book.answers.get(key)
        if said is None:
            book.asked[key] = request
            raise AwaitingAnswers()
        if said.answer is not None:
            # lenient, as the SDK itself builds responses: servers leave out fields
            return self._counted(ChatCompletion.construct(**said.answer))
        raise _replayed_error(self.llm, said.error or {})

    def _observe(self, started: float, outcome: str) -> None:
        LLM_LATENCY.labels(self.llm.model, outcome).observe(time.perf_counter() - started)

    def _round(self) -> tuple[Answer | None, str, str, str]:
        completion = self._complete()
        answer, code, problem = _judge(completion, self.output)
        content = (
            completion.choices[0].message.content if getattr(completion, "choices", None) else None
        )
        return answer, code, problem, content or ""

    def ask(self) -> Any:
        """The model's answer, with one repair round for an unusable one; else PipelineError."""
        for round_ in range(REPAIR_ROUNDS + 1):
            answer, code, problem, content = self._round()
            self.messages += [{"role": "assistant", "content": content}]
            if answer is not None:
                if answer.defaulted:
                    log.info("llm_answer_defaulted", fields=answer.defaulted)
                return answer
            log.warning("llm_answer_unusable", code=code, round=round_)
            self.messages += [
                {
                    "role": "user",
                    "content": f"{problem} Answer again with one JSON object that follows the "
                    "schema, with every field.",
                }
            ]
        raise PipelineError(
            code, f"The model's answer was unusable, also after a repair round: {problem}"
        )

    def revise(self, instruction: str) -> Any | None:
        """One more round after a usable answer; None when the revision is unusable."""
        self.messages += [{"role": "user", "content": instruction}]
        answer, code, _problem, content = self._round()
        self.messages += [{"role": "assistant", "content": content}]
        if answer is None:
            log.warning("llm_revision_unusable", code=code)
        return answer
