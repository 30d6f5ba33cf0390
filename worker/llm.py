"""The `openai` provider: chat.completions with a strict json_schema response format built from
our pydantic models, and what it takes to survive real OpenAI-compatible servers.

- Retries are ours alone (the SDK's are switched off, so the two cannot multiply): connection
  errors, timeouts, 408/409/429 (honouring Retry-After), 5xx and malformed bodies are retried with
  exponential backoff and full jitter, at most `EVENHAND_LLM_RETRIES` times and never past the
  job's deadline (`EVENHAND_JOB_TIME_LIMIT`). Permanent errors (401/403, bad requests, context
  length, insufficient_quota) fail at once. Either way the job ends with a stable code.
- A server that rejects `json_schema` is asked again with `json_object` (the schema then goes in
  the system message and our own validation is the check); the fallback is logged and holds for
  the rest of the conversation. `EVENHAND_RESPONSE_FORMAT=json_object` starts there and saves the
  rejected call on servers known not to take json_schema.
- An answer that is not valid JSON for the schema, a refusal or a truncated answer gets one repair
  round; `Conversation.revise` lets the pipeline ask for one more round (unverifiable quotes,
  loaded wording).
"""

import json
import random
import threading
import time
from functools import lru_cache
from typing import Any

import openai
import structlog
from pydantic import BaseModel, ValidationError

from kernel.config import Settings
from kernel.metrics import LLM_LATENCY, LLM_RETRIES, LLM_TOKENS
from worker.errors import PipelineError
from worker.prompts import Messages, system_message
from worker.schemas import Usage

log = structlog.get_logger(__name__)

REPAIR_ROUNDS = 1


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
    """`output`'s JSON schema. pydantic generates it anew on every call (~0.5 ms of CPU); parsing a
    cached copy costs a few microseconds and still gives every caller a dict of its own."""
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


def _error_code(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    if not isinstance(error, dict):
        return ""
    return str(error.get("code") or error.get("type") or "")


def _rejects_json_schema(exc: openai.BadRequestError) -> bool:
    text = f"{_error_code(exc)} {exc.message}".lower()
    return "response_format" in text or "json_schema" in text


def _pipeline_error(exc: Exception) -> PipelineError:
    """The SDK's errors, once retries are over or pointless, sorted into stable failure codes."""
    match exc:
        case openai.AuthenticationError() | openai.PermissionDeniedError():
            return PipelineError(
                "llm_auth_failed", f"The LLM provider refused our credentials ({exc.status_code})."
            )
        case openai.RateLimitError() if _error_code(exc) == "insufficient_quota":
            return PipelineError("llm_quota_exceeded", "The LLM account has no quota left.")
        case openai.RateLimitError():
            return PipelineError(
                "llm_rate_limited", "The LLM provider kept rate-limiting the request."
            )
        case openai.BadRequestError() if "context_length" in _error_code(exc):
            return PipelineError(
                "llm_context_length",
                "The text is too long for the model's context; lower EVENHAND_TOKEN_BUDGET.",
            )
        case openai.BadRequestError():
            return PipelineError(
                "llm_bad_request",
                f"The LLM provider rejected the request ({_error_code(exc) or 'bad request'}).",
            )
        case openai.APITimeoutError():
            return PipelineError("llm_timeout", "The LLM provider did not answer in time.")
        case openai.APIConnectionError():
            return PipelineError("llm_unreachable", "The LLM provider could not be reached.")
        case openai.APIResponseValidationError() | json.JSONDecodeError():
            # openai 3.x lets a non-JSON 200 body escape as a bare JSONDecodeError
            return PipelineError(
                "llm_malformed_response", "The LLM provider sent a malformed response."
            )
        case openai.APIStatusError():
            return PipelineError(
                "llm_server_error", f"The LLM provider failed with status {exc.status_code}."
            )
    raise exc


def _judge(completion: Any, output: type[BaseModel]) -> tuple[BaseModel | None, str, str]:
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
        return output.model_validate_json(choice.message.content or ""), "", ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the answer"
        return (
            None,
            "llm_invalid_output",
            f"The answer does not match the JSON schema ({where}: {first['msg']}).",
        )


class Conversation:
    """One exchange with the model about one text, counting usage across its calls."""

    def __init__(
        self,
        llm: LLM,
        messages: Messages,
        output: type[BaseModel],
        language: str | None,
        deadline: Deadline,
    ) -> None:
        self.llm = llm
        self.deadline = deadline
        self.messages = list(messages)
        self.output = output
        self.language = language
        self.usage = Usage()
        self.json_schema = llm.json_schema

    def _complete(self) -> Any:
        if self.json_schema:
            try:
                return self._create(self.messages, strict_format(self.output))
            except openai.BadRequestError as exc:
                if not _rejects_json_schema(exc):
                    raise _pipeline_error(exc) from None
                log.warning(
                    "llm_json_schema_unsupported", fallback="json_object", model=self.llm.model
                )
                self.json_schema = False
        with_schema = [
            system_message(self.language, output_schema(self.output)),
            *self.messages[1:],
        ]
        return self._create(with_schema, {"type": "json_object"})

    def _create(self, messages: Messages, response_format: dict[str, Any]) -> Any:
        """One completion, retrying what is worth retrying within the job's deadline."""
        for attempt in range(self.llm.retries + 1):
            self.deadline.check()
            started = time.perf_counter()
            try:
                completion = self.llm.client.chat.completions.create(
                    model=self.llm.model,
                    messages=[],  # replaced by extra_body's
                    max_completion_tokens=self.llm.max_output_tokens,
                    timeout=max(1.0, min(self.llm.timeout, self.deadline.remaining())),
                    # Sent as they are: as typed arguments the SDK would match every message and
                    # the format against its TypedDict unions (~1 ms of CPU per call) only to
                    # send the same plain JSON.
                    extra_body={"messages": messages, "response_format": response_format},
                )
            except openai.BadRequestError:
                self._observe(started, "bad_request")
                raise  # the caller decides whether this is a json_schema rejection
            except (openai.APIError, json.JSONDecodeError) as exc:
                reason = retry_reason(exc)
                self._observe(started, reason or type(exc).__name__)
                if reason is None or attempt == self.llm.retries:
                    raise _pipeline_error(exc) from None
                backoff = min(self.llm.backoff_max, self.llm.backoff_base * 2**attempt)
                wait = random.uniform(
                    backoff / 2, backoff
                )  # jitter: retries of many jobs spread out
                if (retry_after := _retry_after(exc)) is not None:
                    wait = max(wait, min(retry_after, self.llm.backoff_max))
                if wait >= self.deadline.remaining():
                    raise _pipeline_error(exc) from None
                log.warning("llm_retry", reason=reason, attempt=attempt + 1, wait=round(wait, 2))
                LLM_RETRIES.labels(reason).inc()
                self.deadline.sleep(wait)
                continue
            self._observe(started, "ok")
            self.usage.llm_calls += 1
            if usage := getattr(completion, "usage", None):
                self.usage.prompt_tokens += usage.prompt_tokens or 0
                self.usage.completion_tokens += usage.completion_tokens or 0
                LLM_TOKENS.labels(self.llm.model, "prompt").inc(usage.prompt_tokens or 0)
                LLM_TOKENS.labels(self.llm.model, "completion").inc(usage.completion_tokens or 0)
            return completion
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _observe(self, started: float, outcome: str) -> None:
        LLM_LATENCY.labels(self.llm.model, outcome).observe(time.perf_counter() - started)

    def _round(self) -> tuple[BaseModel | None, str, str, str]:
        try:
            completion = self._complete()
        except openai.BadRequestError as exc:
            raise _pipeline_error(exc) from None
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
                return answer
            log.warning("llm_answer_unusable", code=code, round=round_)
            self.messages += [
                {
                    "role": "user",
                    "content": f"{problem} Answer again with one JSON object that follows the schema.",
                }
            ]
        raise PipelineError(code, problem)

    def revise(self, instruction: str) -> Any | None:
        """One more round after a usable answer; None when the revision is unusable."""
        self.messages += [{"role": "user", "content": instruction}]
        answer, code, _problem, content = self._round()
        self.messages += [{"role": "assistant", "content": content}]
        if answer is None:
            log.warning("llm_revision_unusable", code=code)
        return answer
