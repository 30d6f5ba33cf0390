"""evenhand against what real OpenAI-compatible servers accept and answer, through the real API
and worker: refusals adapted to once and remembered, never retried; the provider's own reason in
every failure; answers read from fences, prose and reasoning. Runs on SQLite and PostgreSQL."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.fixtures import fresh_text
from testkit.stack import Stack, stop_process

pytestmark = pytest.mark.e2e

ARTICLE = "news_multiple_sides.txt"


@pytest.fixture
def fresh_worker(stack: Stack) -> Iterator[Stack]:
    """The stack with a worker process of its own, which has learnt nothing about the server yet;
    afterwards the stack gets a fresh worker again, so what it learnt here stays here."""
    stop_process(stack.processes["worker"])
    stack.start_worker("worker")
    yield stack
    stop_process(stack.processes["worker"])
    stack.start_worker("worker")


def worker_events(stack: Stack, event: str, since: int) -> list[dict[str, Any]]:
    """The worker's JSON log lines named `event`, written after byte `since` of its log."""
    with (stack.log_dir / "worker.log").open("rb") as log:
        log.seek(since)
        lines = log.read().decode(errors="replace").splitlines()
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # Celery's own banner lines
        if isinstance(entry, dict) and entry.get("event") == event:
            entries.append(entry)
    return entries


def log_size(stack: Stack) -> int:
    return (stack.log_dir / "worker.log").stat().st_size


def run(stack: Stack, name: str = ARTICLE) -> dict[str, Any]:
    return stack.wait_job(stack.submit(text=fresh_text(name))["job_id"])


# --- adapting to what a server accepts ------------------------------------------------------------


@pytest.mark.parametrize(
    "server",
    [
        {"server": "llama_cpp_python"},  # 500 with a validation error naming response_format
        {"faults": [{"kind": "reject_json_schema", "rate": 1.0}]},  # 400 unsupported format
    ],
    ids=["llama_cpp_python-500", "400"],
)
def test_refused_json_schema_falls_back_once_and_is_remembered(
    fresh_worker: Stack, server: dict[str, Any]
) -> None:
    stack = fresh_worker
    stack.llm.control(**server, requests_log=True)
    since = log_size(stack)
    job = run(stack)
    assert job["status"] == "succeeded", job
    refused, answered = stack.llm.requests()  # one refused call, not six retries
    assert refused["response_format"]["type"] == "json_schema"
    fallback = answered["response_format"]
    assert fallback["type"] == "json_object" and '"argument_points"' in json.dumps(
        fallback["schema"]
    )
    assert '"argument_points"' in answered["messages"][0]["content"]  # and in the prompt
    assert job["result"]["usage"]["llm_calls"] == 1  # the refused call produced nothing

    again = run(stack)  # the worker remembers: no second refusal
    assert again["status"] == "succeeded", again
    assert [r["response_format"]["type"] for r in stack.llm.requests()[2:]] == ["json_object"]
    adapted = worker_events(stack, "llm_server_adapted", since)
    assert len(adapted) == 1, adapted
    assert adapted[0]["refused"] == "json_schema"
    assert adapted[0]["fallback"] == "json_object_schema"


def test_server_without_a_json_mode_gets_the_schema_in_the_prompt(fresh_worker: Stack) -> None:
    stack = fresh_worker
    stack.llm.control(
        faults=[
            {"kind": "reject_json_schema", "rate": 1.0},
            {"kind": "reject_json_object", "rate": 1.0},
        ],
        requests_log=True,
    )
    job = run(stack)
    assert job["status"] == "succeeded", job
    requests = stack.llm.requests()
    formats = [r.get("response_format", {}).get("type") for r in requests]
    assert formats == ["json_schema", "json_object", "json_object", None]
    assert '"argument_points"' in requests[-1]["messages"][0]["content"]
    # the stand-in then answers as chat models do, in a ```json fence, and that is read
    assert job["result"]["argument_points"] and job["result"]["grounding"]["verified"] > 0


def test_old_server_gets_max_tokens(fresh_worker: Stack) -> None:
    stack = fresh_worker
    stack.llm.control(server="old_server", requests_log=True)
    job = run(stack)
    assert job["status"] == "succeeded", job
    assert stack.llm.stats()["refusals"]["max_completion_tokens"] == 1
    refused, answered = stack.llm.requests()
    assert "max_completion_tokens" in refused and "max_tokens" not in refused
    assert answered["max_tokens"] == refused["max_completion_tokens"]
    assert "max_completion_tokens" not in answered
    assert run(stack)["status"] == "succeeded"
    assert stack.llm.stats()["refusals"]["max_completion_tokens"] == 1  # remembered


# --- permanent refusals fail at once, in the provider's words -------------------------------------


def test_unknown_model_fails_at_once_with_the_providers_reason(stack: Stack) -> None:
    stack.llm.control(models=["gpt-4o-mini"])
    job = run(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "llm_model_not_found"
    message = job["error"]["message"]
    assert "'stand-in-model'" in message and "EVENHAND_MODEL" in message
    assert "404 The model `stand-in-model` does not exist" in message  # the provider's words
    assert "sk-test-not-a-real-key" not in message
    stats = stack.llm.stats()
    assert stats["requests"] == 1 and stats["refusals"]["model_not_found"] == 1  # no retries


def test_a_server_error_that_persists_says_what_the_server_said(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "500", "rate": 1.0}])
    job = stack.wait_job(
        stack.submit(text=fresh_text(ARTICLE))["job_id"], timeout=90
    )  # retried with backoff first
    assert job["status"] == "failed" and job["error"]["code"] == "llm_server_error"
    assert "500 The server had an error while processing your request" in job["error"]["message"]


# --- real answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["fenced", "prose", "think"])
def test_answers_in_fences_prose_or_after_reasoning_are_read(stack: Stack, shape: str) -> None:
    stack.llm.control(faults=[{"kind": shape, "rate": 1.0}])
    job = run(stack)
    assert job["status"] == "succeeded", job
    assert stack.llm.stats()["faults"][shape] >= 1
    assert job["result"]["usage"]["llm_calls"] == 1  # read at once, no repair round
    assert job["result"]["argument_points"] and job["result"]["grounding"]["verified"] > 0


def test_missing_optional_fields_are_defaulted_and_named(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "missing_optional", "rate": 1.0}])
    since = log_size(stack)
    job = run(stack)
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["llm_calls"] == 1
    assert all(point["premises"] == [] for point in job["result"]["argument_points"])
    assert job["result"]["defaulted"] == ["loaded_language", "premises"]
    defaulted = worker_events(stack, "llm_answer_defaulted", since)
    assert defaulted and defaulted[0]["fields"] == ["loaded_language", "premises"]


def test_missing_thesis_fails_after_one_repair_round_saying_so(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "missing_thesis", "rate": 1.0}])
    job = run(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "llm_invalid_output"
    assert "thesis" in job["error"]["message"]
    assert stack.llm.stats()["faults"]["missing_thesis"] == 2  # the answer and its repair
