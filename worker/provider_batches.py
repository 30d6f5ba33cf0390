"""The provider's Batch API, for `"mode": "provider_batch"` batches: each round of requests goes
as one JSONL file to `/v1/files`, then `/v1/batches`; the sweeper polls it, and once it ends
reads its output and error files and stores every answer or error on its request (the states
and their transitions are kernel.provider_batches's). The jobs then replay the answers
(worker.llm.answering_from) and end, or ask the next round.

A round the provider could not take is sent again at the next poll when the failure is worth
retrying (a connection error, 429, 5xx); any other refusal ends its requests with the provider's
reason, and so their jobs.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final, cast

import openai
import structlog
from sqlmodel import Session

from kernel.config import Settings
from kernel.models import ProviderBatch
from kernel.provider_batches import (
    TERMINAL,
    batches_ready,
    finish_round,
    record_answers,
    record_sent,
    record_status,
    reserve_round,
    round_requests,
    rounds_due,
)
from worker.llm import LLM, get_llm, provider_reason, retry_reason

log = structlog.get_logger(__name__)

ENDPOINT: Final = "/v1/chat/completions"
REASON_CHARS = 300


@dataclass
class ProviderSweep:
    sent: int = 0  # rounds sent to the provider
    ended: int = 0  # rounds the provider ended, their lines stored
    unparked: int = 0  # jobs sent back to run with their answers


def sweep_provider_batches(session: Session, settings: Settings) -> ProviderSweep:
    """Poll the rounds in flight, then send the rounds that are ready."""
    sweep = ProviderSweep()
    if settings.provider != "openai":
        return sweep  # the API takes no provider_batch batch without an LLM provider
    llm = get_llm(settings)
    for round_ in rounds_due(session, settings.provider_batch_poll):
        if round_.provider_id is None:
            sweep.sent += _send(session, llm, settings, round_)
        else:
            sweep.unparked += _poll(session, llm, settings, round_, sweep)
    for batch_id in batches_ready(session):
        if (reserved := reserve_round(session, batch_id)) is not None:
            sweep.sent += _send(session, llm, settings, reserved)
    return sweep


def jsonl(requests: list[tuple[uuid.UUID, dict[str, Any]]]) -> bytes:
    """The Batch API's input file: one chat completion per line, its custom_id our request id."""
    lines = (
        json.dumps(
            {"custom_id": str(request_id), "method": "POST", "url": ENDPOINT, "body": body},
            ensure_ascii=False,
        )
        for request_id, body in requests
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def _send(session: Session, llm: LLM, settings: Settings, round_: ProviderBatch) -> int:
    """Upload the round and create its batch; 1 when the provider took it."""
    data = jsonl(round_requests(session, round_.id))
    name = f"evenhand-{round_.batch_id}-{round_.round}.jsonl"
    try:
        uploaded = llm.client.files.create(
            file=(name, data, "application/jsonl"), purpose="batch", timeout=llm.timeout
        )
        created = llm.client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window=cast(Any, settings.provider_batch_window),
            metadata={"evenhand_batch": str(round_.batch_id), "evenhand_round": str(round_.round)},
            timeout=llm.timeout,
        )
    except openai.APIError as exc:
        if retry_reason(exc) is not None:
            log.warning("provider_batch_send_failed", round=round_.round, error=type(exc).__name__)
            return 0  # the next poll sends it again
        reason = provider_reason(exc, llm)
        log.warning("provider_batch_refused", round=round_.round, status=_status(exc))
        finish_round(
            session,
            round_,
            "failed",
            {
                "code": "provider_batch_refused",
                "message": "The LLM provider refused the batch (its /v1/files and /v1/batches "
                f"endpoints at OPENAI_BASE_URL); submit the articles one by one, or as a live "
                f"batch. {reason}",
            },
            reason,
        )
        return 0
    record_sent(session, round_.id, created.id, uploaded.id, created.status)
    log.info("provider_batch_sent", round=round_.round, requests=round_.requests)
    return 1


def _status(exc: openai.APIError) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def _poll(
    session: Session, llm: LLM, settings: Settings, round_: ProviderBatch, sweep: ProviderSweep
) -> int:
    """Ask the provider about the round; once it ended, store its lines. Jobs unparked."""
    assert round_.provider_id is not None
    try:
        batch = llm.client.batches.retrieve(round_.provider_id, timeout=llm.timeout)
        if batch.status not in TERMINAL:
            if batch.status != round_.status:
                record_status(session, round_.id, batch.status)
            return 0
        lines = [
            line
            for file_id in (batch.output_file_id, batch.error_file_id)
            if file_id
            for line in llm.client.files.content(file_id, timeout=llm.timeout).text.splitlines()
            if line.strip()
        ]
    except openai.APIError as exc:
        log.warning("provider_batch_poll_failed", round=round_.round, error=type(exc).__name__)
        return 0  # the next poll asks again
    answers, errors, retryable = read_lines(lines, settings)
    record_answers(session, round_.id, answers, errors, retryable, settings.llm_retries + 1)
    reason = _batch_errors(batch, llm)
    unparked = finish_round(
        session, round_, batch.status, unanswered(batch.status, settings, reason), reason
    )
    sweep.ended += 1
    log.info(
        "provider_batch_ended",
        round=round_.round,
        status=batch.status,
        answered=len(answers),
        errors=len(errors),
        retried=len(retryable),
        unparked=len(unparked),
    )
    return len(unparked)


def read_lines(
    lines: list[str], settings: Settings
) -> tuple[dict[uuid.UUID, dict], dict[uuid.UUID, dict], dict[uuid.UUID, dict]]:
    """The output and error files' lines as (answers, errors, retryable errors) by request id.
    A line we cannot read is left out: its request ends with the round's `unanswered` error."""
    answers: dict[uuid.UUID, dict] = {}
    errors: dict[uuid.UUID, dict] = {}
    retryable: dict[uuid.UUID, dict] = {}
    for line in lines:
        try:
            item = json.loads(line)
            request_id = uuid.UUID(str(item["custom_id"]))
        except (ValueError, TypeError, KeyError):
            log.warning("provider_batch_line_unreadable")
            continue
        response = item.get("response") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if status == 200 and isinstance(body, dict):
            answers[request_id] = body
        elif isinstance(status, int):
            said = {"status": status, "body": body}
            worth_retrying = status in (408, 409, 429) or status >= 500
            (retryable if worth_retrying else errors)[request_id] = said
        else:
            errors[request_id] = _line_error(item.get("error"), settings)
    return answers, errors, retryable


def _line_error(error: Any, settings: Settings) -> dict[str, str]:
    error = error if isinstance(error, dict) else {}
    said = _words(str(error.get("message") or error.get("code") or "no reason given"))
    if error.get("code") == "batch_expired":
        return _expired(settings, said)
    return {
        "code": "provider_batch_request_failed",
        "message": f"The provider's batch did not run this request. The provider answered: {said}",
    }


def _expired(settings: Settings, said: str) -> dict[str, str]:
    return {
        "code": "provider_batch_expired",
        "message": "The provider did not run this request within the batch's completion window "
        f"({settings.provider_batch_window}); retry the job to send it again. The provider "
        f"answered: {said}",
    }


def _words(text: str) -> str:
    text = " ".join(text.split())
    return text[:REASON_CHARS].rstrip() + "…" if len(text) > REASON_CHARS else text


def _batch_errors(batch: Any, llm: LLM) -> str | None:
    """The provider's own reasons for failing a whole batch, if it gave any."""
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    messages = [str(getattr(e, "message", None) or getattr(e, "code", "")) for e in data]
    said = "; ".join(m for m in messages if m)
    if not said:
        return None
    key = llm.client.api_key
    return _words(said.replace(key, "[redacted]") if len(key) >= 4 else said)


def unanswered(status: str, settings: Settings, reason: str | None) -> dict[str, str]:
    """The error of a request the ended batch gave no line for, by how the batch ended."""
    said = reason or "no reason given"
    if status == "expired":
        return _expired(settings, said)
    if status == "failed":
        return {
            "code": "provider_batch_failed",
            "message": f"The provider failed the whole batch. The provider answered: {said}",
        }
    if status == "cancelled":
        return {
            "code": "provider_batch_canceled",
            "message": "The batch was canceled at the provider before it answered this request.",
        }
    return {
        "code": "provider_batch_incomplete",
        "message": "The provider's batch ended without an answer to this request.",
    }
