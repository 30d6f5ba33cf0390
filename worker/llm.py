"""The `openai` provider: one chat.completions call with a strict json_schema response format.

The SDK owns transport retries (connection errors, 408/409/429/5xx, honouring Retry-After); this
module turns what is left into a PipelineError with a stable code, and gives the model one repair
round when its answer is not valid against the schema.
"""

import json
from functools import lru_cache
from typing import Any

import openai
import structlog
from pydantic import ValidationError

from evenhand.config import Settings
from worker.errors import PipelineError
from worker.prompts import build_messages
from worker.schemas import Draft, Usage

log = structlog.get_logger(__name__)

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "evenhand_summary",
        "strict": True,
        "schema": Draft.model_json_schema(),
    },
}
REPAIR_ROUNDS = 1


@lru_cache
def get_client(
    base_url: str | None, api_key: str, timeout: float, max_retries: int
) -> openai.OpenAI:
    # One client per process: it keeps its HTTP connection pool across jobs.
    return openai.OpenAI(
        base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
    )


def client_for(settings: Settings) -> openai.OpenAI:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return get_client(settings.openai_base_url, key, settings.llm_timeout, settings.llm_max_retries)


def _error_code(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return str((error or {}).get("code") or (error or {}).get("type") or "")


def _call(client: openai.OpenAI, model: str, messages: list[dict[str, str]]) -> Any:
    """One completion, with the SDK's errors sorted into stable failure codes."""
    try:
        return client.chat.completions.create(
            model=model,
            messages=messages,
            response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
        )
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise PipelineError(
            "llm_auth_failed", f"The LLM provider refused our credentials ({exc.status_code})."
        ) from None
    except openai.RateLimitError as exc:
        if _error_code(exc) == "insufficient_quota":
            raise PipelineError(
                "llm_quota_exceeded", "The LLM account has no quota left."
            ) from None
        raise PipelineError(
            "llm_rate_limited", "The LLM provider kept rate-limiting the request."
        ) from None
    except openai.BadRequestError as exc:
        if "context_length" in _error_code(exc):
            raise PipelineError(
                "llm_context_length", "The article is too long for the model's context."
            ) from None
        raise PipelineError(
            "llm_bad_request",
            f"The LLM provider rejected the request: {_error_code(exc) or 'bad request'}.",
        ) from None
    except openai.APITimeoutError:
        raise PipelineError("llm_timeout", "The LLM provider did not answer in time.") from None
    except openai.APIConnectionError:
        raise PipelineError("llm_unreachable", "The LLM provider could not be reached.") from None
    except (openai.APIResponseValidationError, json.JSONDecodeError):
        # openai 3.x lets a non-JSON 200 body escape as a bare JSONDecodeError
        raise PipelineError(
            "llm_malformed_response", "The LLM provider sent a malformed response."
        ) from None
    except openai.APIStatusError as exc:
        raise PipelineError(
            "llm_server_error", f"The LLM provider failed with status {exc.status_code}."
        ) from None


def _judge(completion: Any) -> tuple[Draft | None, str, str]:
    """The draft, or why the answer is unusable (failure code, message for the repair round)."""
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
        return Draft.model_validate_json(choice.message.content or ""), "", ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the answer"
        return (
            None,
            "llm_invalid_output",
            f"The answer does not match the JSON schema ({where}: {first['msg']}).",
        )


def summarize_with_llm(
    text: str, *, title: str | None, source: str | None, language: str | None, settings: Settings
) -> tuple[Draft, Usage]:
    client = client_for(settings)
    messages = build_messages(text, title=title, source=source, language=language)
    usage = Usage()
    for round_ in range(REPAIR_ROUNDS + 1):
        completion = _call(client, settings.model, messages)
        usage.llm_calls += 1
        if completion_usage := getattr(completion, "usage", None):
            usage.prompt_tokens += completion_usage.prompt_tokens or 0
            usage.completion_tokens += completion_usage.completion_tokens or 0
        draft, code, problem = _judge(completion)
        if draft is not None:
            return draft, usage
        log.warning("llm_answer_unusable", code=code, round=round_)
        content = (
            completion.choices[0].message.content if getattr(completion, "choices", None) else None
        )
        messages = [
            *messages,
            {"role": "assistant", "content": content or ""},
            {
                "role": "user",
                "content": f"{problem} Answer again with one JSON object that follows the schema.",
            },
        ]
    raise PipelineError(code, problem)
