"""`"mode": "provider_batch"`: a batch's LLM calls go through the provider's Batch API (/v1/files,
/v1/batches) of the stand-in, never as live chat requests; its jobs end when the provider's
batch does, and a batch that expires, fails or answers some lines with errors ends the jobs it
concerns with the provider's reason."""

from typing import Any

import httpx
import pytest

from testkit.fixtures import fresh_text
from testkit.stack import Stack, wait_until

pytestmark = pytest.mark.e2e

ARTICLES = ("news_multiple_sides.txt", "short_opinion.txt", "opinion_boilerplate.txt")


def submit_provider_batch(client: httpx.Client, names: tuple[str, ...] = ARTICLES) -> dict:
    body = {
        "mode": "provider_batch",
        "articles": [{"text": fresh_text(name), "title": name} for name in names],
    }
    response = client.post("/v1/batches", json=body)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["mode"] == "provider_batch"
    return batch


def wait_finished(client: httpx.Client, batch_id: str, timeout: float = 90) -> dict[str, Any]:
    def finished() -> dict | None:
        progress = client.get(f"/v1/batches/{batch_id}").json()
        return progress if progress["finished"] else None

    return wait_until(finished, timeout, interval=0.2, what="the provider batch to finish")


def jobs_of(stack: Stack, batch: dict) -> list[dict]:
    return [stack.wait_job(job["job_id"]) for job in batch["jobs"]]


def test_every_llm_call_goes_through_the_batch_api_and_results_are_grounded(stack: Stack) -> None:
    with stack.client() as client:
        batch = submit_provider_batch(client)
        progress = wait_finished(client, batch["id"])
    assert progress["counts"]["succeeded"] == len(ARTICLES), progress
    jobs = jobs_of(stack, batch)
    for job in jobs:
        result = job["result"]
        assert result["provider"] == "openai" and result["argument_points"]
        assert result["grounding"]["verified"] == result["grounding"]["quotes"] > 0
        assert result["usage"]["llm_calls"] == 1 and result["usage"]["prompt_tokens"] > 0
    stats = stack.llm.stats()
    # not one live chat request: every answer came out of a batch's output file
    assert stats["requests"] == 0 and stats["batches"] == 1
    assert stats["batch_lines"] == len(ARTICLES)
    (round_,) = progress["provider_batches"]
    assert round_["round"] == 1 and round_["status"] == "completed"
    assert round_["requests"] == len(ARTICLES) and round_["provider_id"].startswith("batch_")


def test_the_support_check_is_a_second_round(support_stack: Stack) -> None:
    with support_stack.client() as client:
        batch = submit_provider_batch(client, ARTICLES[:2])
        progress = wait_finished(client, batch["id"])
    assert progress["counts"]["succeeded"] == 2, progress
    assert [r["status"] for r in progress["provider_batches"]] == ["completed", "completed"]
    assert [r["requests"] for r in progress["provider_batches"]] == [2, 2]
    for job in jobs_of(support_stack, batch):
        grounding = job["result"]["grounding"]
        assert grounding["supports"] == grounding["verified"] > 0  # the stand-in's verdicts
        assert job["result"]["usage"]["llm_calls"] == 2
    assert support_stack.llm.stats()["requests"] == 0


def test_an_expired_batch_fails_the_requests_it_did_not_run_and_a_retry_runs_them(
    stack: Stack,
) -> None:
    stack.llm.control(batch="expire")
    names = (*ARTICLES, "non_english_column.txt")
    with stack.client() as client:
        batch = submit_provider_batch(client, names)
        progress = wait_finished(client, batch["id"])
        assert progress["counts"] == {
            "queued": 0,
            "running": 0,
            "succeeded": 2,
            "failed": 2,
            "canceled": 0,
        }
        assert progress["provider_batches"][0]["status"] == "expired"
        failed = [job for job in jobs_of(stack, batch) if job["status"] == "failed"]
        for job in failed:
            assert job["error"]["code"] == "provider_batch_expired"
            assert "completion window (24h)" in job["error"]["message"]
            assert "could not be executed before the completion window" in job["error"]["message"]

        stack.llm.control(batch="complete")
        retried = client.post(f"/v1/jobs/{failed[0]['id']}/retry")
        assert retried.status_code == 202, retried.text
        job = stack.wait_job(failed[0]["id"])
        assert job["status"] == "succeeded", job["error"]
        rounds = client.get(f"/v1/batches/{batch['id']}").json()["provider_batches"]
    assert [(r["round"], r["requests"], r["status"]) for r in rounds] == [
        (1, 4, "expired"),
        (2, 1, "completed"),
    ]
    assert stack.llm.stats()["requests"] == 0


def test_a_failed_batch_fails_its_jobs_with_the_providers_reason(stack: Stack) -> None:
    stack.llm.control(batch="fail")
    with stack.client() as client:
        batch = submit_provider_batch(client, ARTICLES[:2])
        progress = wait_finished(client, batch["id"])
    assert progress["counts"]["failed"] == 2
    assert "told to fail this batch" in progress["provider_batches"][0]["error"]
    for job in jobs_of(stack, batch):
        assert job["error"]["code"] == "provider_batch_failed"
        assert "The stand-in was told to fail this batch" in job["error"]["message"]


def test_partial_errors_end_only_their_jobs_and_retryable_lines_go_again(stack: Stack) -> None:
    # one line over the context limit (permanent), one line a 500 (sent again next round)
    stack.llm.control(faults=[{"kind": "context_length", "count": 1}, {"kind": "500", "count": 1}])
    with stack.client() as client:
        batch = submit_provider_batch(client)
        progress = wait_finished(client, batch["id"])
    assert progress["counts"]["succeeded"] == 2 and progress["counts"]["failed"] == 1, progress
    (failed,) = [job for job in jobs_of(stack, batch) if job["status"] == "failed"]
    assert failed["error"]["code"] == "llm_context_length"
    assert "The provider answered: 400" in failed["error"]["message"]
    assert [r["requests"] for r in progress["provider_batches"]] == [3, 1]
    assert stack.llm.stats()["requests"] == 0


def test_a_provider_without_a_batch_api_fails_the_jobs_clearly(stack: Stack) -> None:
    stack.llm.control(batch="unsupported")
    with stack.client() as client:
        batch = submit_provider_batch(client, ARTICLES[:1])
        progress = wait_finished(client, batch["id"])
    (job,) = jobs_of(stack, batch)
    assert job["error"]["code"] == "provider_batch_refused"
    assert "/v1/batches" in job["error"]["message"]
    assert "The provider answered: 404" in job["error"]["message"]
    assert progress["provider_batches"][0]["status"] == "failed"


def test_parked_jobs_survive_a_killed_worker_and_a_canceled_job_stays_canceled(
    stack: Stack,
) -> None:
    stack.llm.control(batch="hold")
    with stack.client() as client:
        batch = submit_provider_batch(client)

        def in_flight() -> dict | None:
            rounds = client.get(f"/v1/batches/{batch['id']}").json()["provider_batches"]
            return rounds[0] if rounds and rounds[0]["status"] == "in_progress" else None

        wait_until(in_flight, 60, interval=0.2, what="the round to be in progress")
        queued = client.get(f"/v1/batches/{batch['id']}").json()["counts"]["queued"]
        assert queued == len(ARTICLES)  # parked: queued, waiting for the provider
        canceled = batch["jobs"][0]["job_id"]
        assert client.delete(f"/v1/jobs/{canceled}").status_code == 200

        stack.processes["worker"].kill()  # SIGKILL while every job waits on the provider
        stack.processes["worker"].wait(10)
        stack.llm.control(batch="complete")
        stack.start_worker("worker")
        progress = wait_finished(client, batch["id"])
    assert progress["counts"]["succeeded"] == len(ARTICLES) - 1
    assert progress["counts"]["canceled"] == 1
    assert stack.wait_job(canceled)["status"] == "canceled"
    assert stack.llm.stats()["batches"] == 1  # the round was not sent twice
