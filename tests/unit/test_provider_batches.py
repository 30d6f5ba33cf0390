"""provider_batch mode without services: a batch's requests and rounds on a real (SQLite)
database, the Batch API's output lines read into answers and errors, and replayed answers."""

import json
import uuid

import pytest
from sqlmodel import Session, select

from api.errors import Problem
from api.limits import DailyUsage
from api.schemas import BatchCreate
from api.service import submit_batch
from kernel.config import Settings
from kernel.jobs import claim_job, fail_job, publish_waiting, requeue_job
from kernel.keys import create_key
from kernel.models import (
    ApiKey,
    Article,
    Batch,
    BatchMode,
    Job,
    JobStatus,
    LLMRequest,
    ProviderBatch,
)
from kernel.provider_batches import (
    ProviderAnswer,
    batches_ready,
    finish_round,
    load_answers,
    park_job,
    record_answers,
    reserve_round,
)
from worker.errors import PipelineError
from worker.llm import (
    LLM,
    AnswerBook,
    AwaitingAnswers,
    Conversation,
    Deadline,
    answering_from,
    request_key,
)
from worker.provider_batches import jsonl, read_lines, unanswered
from worker.schemas import Draft


def new_batch(session: Session, jobs: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    key, _ = create_key(session, f"k-{uuid.uuid4()}")
    assert key.id is not None
    batch = Batch(owner_id=key.id, mode=BatchMode.provider_batch)
    session.add(batch)
    job_ids = []
    for n in range(jobs):
        article = Article(owner_id=key.id, input_kind="text", raw_text=f"Sentence {n}.")
        job = Job(article_id=article.id, owner_id=key.id, batch_id=batch.id)
        session.add_all([article, job])
        job_ids.append(job.id)
    session.commit()
    return batch.id, job_ids


def park(session: Session, batch_id: uuid.UUID, job_id: uuid.UUID, *keys: str) -> None:
    claim = claim_job(session, job_id, lease_seconds=30, max_attempts=3)
    assert claim is not None
    assert park_job(session, claim, batch_id, {key: {"model": "m", "key": key} for key in keys})


def job(session: Session, job_id: uuid.UUID) -> Job:
    session.expire_all()
    found = session.get(Job, job_id)
    assert found is not None
    return found


def test_a_round_waits_for_every_job_then_takes_all_their_requests_once(session: Session) -> None:
    batch_id, (first, second) = new_batch(session, 2)
    park(session, batch_id, first, "a", "b")
    parked = job(session, first)
    assert parked.status == JobStatus.queued and parked.parked_at is not None
    assert parked.attempts == 0  # waiting for the provider is not a failed try
    assert batches_ready(session) == []  # the second job may still ask something
    park(session, batch_id, second, "c")
    assert batches_ready(session) == [batch_id]
    round_ = reserve_round(session, batch_id)
    assert round_ is not None and round_.round == 1 and round_.requests == 3
    assert reserve_round(session, batch_id) is None  # nothing left for a second sweeper
    assert batches_ready(session) == []
    # parked jobs are the provider's to wake, never the broker's
    assert publish_waiting(session, republish_after=0) == 0


def test_an_ended_round_unparks_the_jobs_it_answered_and_errors_the_rest(session: Session) -> None:
    batch_id, (first, second) = new_batch(session, 2)
    park(session, batch_id, first, "a")
    park(session, batch_id, second, "b")
    round_ = reserve_round(session, batch_id)
    assert round_ is not None
    ids = {r.key: r.id for r in session.exec(select(LLMRequest))}
    record_answers(session, round_.id, {ids["a"]: {"choices": []}}, {}, {}, max_sends=3)
    expired = {"code": "provider_batch_expired", "message": "too late"}
    unparked = finish_round(session, round_, "expired", expired, None)
    assert sorted(unparked) == sorted([first, second])
    assert load_answers(session, first)["a"].answer == {"choices": []}
    assert load_answers(session, second)["b"].error == expired
    assert job(session, first).parked_at is None and job(session, first).published_at is None


def test_a_retryable_line_is_sent_again_until_its_sends_run_out(session: Session) -> None:
    batch_id, (only,) = new_batch(session, 1)
    park(session, batch_id, only, "a")
    server_error = {"status": 500, "body": {"error": {"message": "busy"}}}
    for send in (1, 2):
        round_ = reserve_round(session, batch_id)
        assert round_ is not None and round_.round == send
        request_id = session.exec(select(LLMRequest.id)).one()
        record_answers(session, round_.id, {}, {}, {request_id: server_error}, max_sends=2)
        finish_round(session, round_, "completed", {"code": "x", "message": "x"}, None)
    # sent twice: the second 500 stays as the request's error, and the job wakes to fail
    assert load_answers(session, only)["a"].error == server_error
    assert job(session, only).parked_at is None


def test_a_retried_job_forgets_its_providers_errors_but_keeps_its_answers(
    session: Session,
) -> None:
    batch_id, (only,) = new_batch(session, 1)
    park(session, batch_id, only, "a", "b")
    round_ = reserve_round(session, batch_id)
    assert round_ is not None
    ids = {r.key: r.id for r in session.exec(select(LLMRequest))}
    record_answers(session, round_.id, {ids["a"]: {"choices": []}}, {}, {}, max_sends=3)
    finish_round(
        session, round_, "expired", {"code": "provider_batch_expired", "message": "x"}, None
    )
    claim = claim_job(session, only, lease_seconds=30, max_attempts=3)
    assert claim is not None  # its replay ran into the stored error and failed the job
    assert fail_job(session, claim, "provider_batch_expired", "x")
    assert requeue_job(session, only)
    assert set(load_answers(session, only)) == {"a"}


def test_output_and_error_lines_become_answers_errors_and_retries() -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    ok = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 5}}
    lines = [
        json.dumps({"custom_id": str(ids[0]), "response": {"status_code": 200, "body": ok}}),
        json.dumps(
            {"custom_id": str(ids[1]), "response": {"status_code": 400, "body": {"error": {}}}}
        ),
        json.dumps({"custom_id": str(ids[2]), "response": {"status_code": 503, "body": "busy"}}),
        json.dumps(
            {
                "custom_id": str(ids[3]),
                "response": None,
                "error": {"code": "batch_expired", "message": "Window closed."},
            }
        ),
        json.dumps({"custom_id": str(ids[4]), "error": {"message": "sk-secretkey12345 bad"}}),
        "not json at all",
    ]
    answers, errors, retryable = read_lines(lines, Settings())
    assert answers == {ids[0]: ok}
    assert errors[ids[1]] == {"status": 400, "body": {"error": {}}}
    assert retryable == {ids[2]: {"status": 503, "body": "busy"}}
    assert errors[ids[3]]["code"] == "provider_batch_expired"
    assert "Window closed." in errors[ids[3]]["message"]
    assert errors[ids[4]]["code"] == "provider_batch_request_failed"
    assert set(errors) == {ids[1], ids[3], ids[4]}


def test_a_round_is_one_jsonl_line_per_request_with_our_id() -> None:
    request_id = uuid.uuid4()
    body = {"model": "m", "messages": [{"role": "user", "content": "Zoë said “hi”"}]}
    (line,) = jsonl([(request_id, body)]).decode().splitlines()
    assert json.loads(line) == {
        "custom_id": str(request_id),
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }


def test_how_a_batch_ended_names_the_error_of_requests_it_left() -> None:
    settings = Settings()
    assert unanswered("failed", settings, "bad line 3")["message"].endswith("bad line 3")
    assert unanswered("expired", settings, None)["code"] == "provider_batch_expired"
    assert unanswered("cancelled", settings, None)["code"] == "provider_batch_canceled"


def llm() -> LLM:
    return LLM(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-unused",
        timeout=1,
        retries=0,
        backoff_base=0.01,
        backoff_max=0.01,
        model="m",
        max_output_tokens=100,
        json_schema=True,
    )


def conversation() -> Conversation:
    messages = [{"role": "user", "content": "Summarize."}]
    return Conversation(llm(), messages, Draft, None, Deadline(10))


def test_a_call_without_an_answer_is_recorded_and_parks_the_run() -> None:
    book = AnswerBook({})
    with answering_from(book), pytest.raises(AwaitingAnswers):
        conversation().ask()
    ((key, request),) = book.asked.items()
    assert request["model"] == "m" and request["messages"][0]["content"] == "Summarize."
    assert key == request_key(request)


def test_a_replayed_answer_is_parsed_and_counted_like_a_live_one() -> None:
    book = AnswerBook({})
    with answering_from(book), pytest.raises(AwaitingAnswers):
        conversation().ask()
    (key,) = book.asked
    draft = {
        "article_type": "news",
        "thesis": "A thesis.",
        "summary": "A summary.",
        "argument_points": [],
        "loaded_language": [],
    }
    answer = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": json.dumps(draft)},
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    replayed = conversation()
    with answering_from(AnswerBook({key: ProviderAnswer(answer, None)})):
        result = replayed.ask()
    assert result.thesis == "A thesis."
    assert (replayed.usage.prompt_tokens, replayed.usage.completion_tokens) == (11, 7)


def test_a_replayed_status_error_fails_as_it_would_live() -> None:
    book = AnswerBook({})
    with answering_from(book), pytest.raises(AwaitingAnswers):
        conversation().ask()
    (key,) = book.asked
    error = {
        "status": 400,
        "body": {"error": {"message": "Too long.", "code": "context_length_exceeded"}},
    }
    with (
        answering_from(AnswerBook({key: ProviderAnswer(None, error)})),
        pytest.raises(PipelineError) as failed,
    ):
        conversation().ask()
    assert failed.value.code == "llm_context_length"
    assert "The provider answered: 400 Too long." in failed.value.message


def test_the_api_refuses_a_provider_batch_without_an_llm_provider(session: Session) -> None:
    key, _ = create_key(session, "offline")
    owner = session.get(ApiKey, key.id)
    assert owner is not None
    payload = BatchCreate.model_validate(
        {"mode": "provider_batch", "articles": [{"text": "A sentence."}]}
    )
    settings = Settings(provider="extractive")
    with pytest.raises(Problem) as refused:
        submit_batch(session, owner, payload, settings, DailyUsage())
    assert refused.value.status == 422 and "OPENAI_API_KEY" in refused.value.detail
    assert session.exec(select(Batch)).all() == []
    assert session.exec(select(ProviderBatch)).all() == []
