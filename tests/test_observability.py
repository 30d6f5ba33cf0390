"""Results without polling (server-sent events) and Prometheus metrics, on the real stack."""

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import fresh_text
from tests.stack import Stack

pytestmark = pytest.mark.e2e


def read_events(stack: Stack, job_id: str, key: str | None = None) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    headers = {"Authorization": f"Bearer {key or stack.key}"}
    with httpx.stream(
        "GET", f"{stack.api_url}/v1/jobs/{job_id}/events", headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, line.removeprefix("data: ")))
    return events


def test_events_stream_status_changes_then_the_job(stack: Stack) -> None:
    stack.llm.control(latency=1.5)
    job_id = stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"]
    events = read_events(stack, job_id)  # the server ends the stream when the job ends
    statuses = [json.loads(data)["status"] for event, data in events if event == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert len(statuses) == len(set(statuses))  # one event per change
    final_event, final_data = events[-1]
    assert final_event == "job"
    job = json.loads(final_data)
    assert job["id"] == job_id and job["result"]["summary"]


def test_events_of_another_key_or_no_key_are_refused(stack: Stack) -> None:
    job_id = stack.submit(text=fresh_text("single_sentence.txt"))["job_id"]
    other = stack.new_key("sse-other")
    response = httpx.get(
        f"{stack.api_url}/v1/jobs/{job_id}/events", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404
    assert httpx.get(f"{stack.api_url}/v1/jobs/{job_id}/events").status_code == 401
    stack.wait_job(job_id)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (in any order)."""
    values = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                values.append(sample.value)
    assert values, f"no {name} {labels} in metrics"
    return sum(values)


def test_api_and_worker_metrics(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "500", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "succeeded"
    api = httpx.get(f"{stack.api_url}/metrics")
    assert api.status_code == 200 and api.headers["content-type"].startswith("text/plain")
    assert metric(api.text, "evenhand_jobs", status="succeeded") >= 1
    assert metric(api.text, "evenhand_queue_depth", queue=stack.env["EVENHAND_QUEUE"]) >= 0
    assert metric(api.text, "evenhand_oldest_queued_job_age_seconds") >= 0
    port = stack.env["EVENHAND_WORKER_METRICS_PORT"]
    worker = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    model = stack.env["EVENHAND_MODEL"]
    assert metric(worker, "evenhand_llm_request_seconds_count", model=model, outcome="ok") >= 1
    assert (
        metric(worker, "evenhand_llm_request_seconds_count", model=model, outcome="status_500") >= 1
    )
    assert metric(worker, "evenhand_llm_retries_total", reason="status_500") >= 1
    assert metric(worker, "evenhand_llm_tokens_total", model=model, kind="prompt") > 0
    assert metric(worker, "evenhand_jobs_finished_total", status="succeeded", code="") >= 1
