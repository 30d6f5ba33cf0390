"""Results without polling (server-sent events, webhooks) and Prometheus metrics, on the real
stack."""

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from testkit.fixtures import fresh_text
from testkit.stack import Stack, metric, wait_until

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


def _api_metrics(stack: Stack) -> str:
    return httpx.get(f"{stack.api_url}/metrics").text


def _running_job(stack: Stack, latency: float) -> str:
    stack.llm.control(latency=latency)
    job_id = stack.submit(text=fresh_text("single_sentence.txt"))["job_id"]
    wait_until(
        lambda: metric(_api_metrics(stack), "evenhand_job_watch_subscribed") == 1,
        10,
        what="the API's subscription to job announcements",
    )
    with stack.client() as client:
        wait_until(
            lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running",
            30,
            what="the job to run",
        )
    return job_id


def test_a_waiting_long_poll_is_woken_when_its_job_ends(stack: Stack) -> None:
    # The worker announces the job's end on Redis and the API answers the long-poll then. Without
    # the announcement the wait would end at its next database read (every 2 s) with no wake-up.
    job_id = _running_job(stack, latency=3)
    before = metric(_api_metrics(stack), "evenhand_job_watch_wakeups_total")
    with stack.client() as client:
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 30}).json()
    assert job["status"] == "succeeded"
    assert metric(_api_metrics(stack), "evenhand_job_watch_wakeups_total") > before


def test_a_cancel_wakes_the_long_poll_waiting_on_the_job(stack: Stack) -> None:
    job_id = _running_job(stack, latency=8)
    before = metric(_api_metrics(stack), "evenhand_job_watch_wakeups_total")
    with stack.client() as client, ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(client.get, f"/v1/jobs/{job_id}", params={"wait": 30})
        wait_until(
            lambda: metric(_api_metrics(stack), "evenhand_job_watch_waiting") >= 1,
            10,
            what="the long-poll to wait",
        )
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
        assert waiting.result(timeout=30).json()["status"] == "canceled"
    # woken by the API's own announcement (the worker's comes only when its LLM call returns)
    assert metric(_api_metrics(stack), "evenhand_job_watch_wakeups_total") > before


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


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver on loopback that fails its first delivery."""

    deliveries: list[tuple[dict[str, str], bytes]]
    fail_first: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.deliveries.append((dict(self.headers), body))
        status = 500 if len(self.deliveries) <= self.fail_first else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    deliveries: list[tuple[dict[str, str], bytes]] = []
    handler = type("R", (Receiver,), {"deliveries": deliveries, "fail_first": 1})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/evenhand", deliveries
    server.shutdown()
    thread.join(5)


def test_webhook_is_signed_and_retried(stack: Stack, receiver: tuple[str, list]) -> None:
    url, deliveries = receiver
    job_id = stack.submit(text=fresh_text("single_sentence.txt"), callback_url=url)["job_id"]
    assert stack.wait_job(job_id)["status"] == "succeeded"
    wait_until(lambda: len(deliveries) >= 2, 30, what="the retried webhook delivery")
    headers, body = deliveries[-1]
    secret = hashlib.sha256(stack.key.encode()).hexdigest()  # the receiver derives it from its key
    expected = hmac.new(
        secret.encode(), headers["X-Evenhand-Timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["X-Evenhand-Signature"] == "sha256=" + expected.hexdigest()
    job = json.loads(body)
    assert job["id"] == job_id and job["status"] == "succeeded" and job["result"]["summary"]
    assert deliveries[0][1] == body  # the retry sends the same job
    time.sleep(1)
    assert len(deliveries) == 2  # delivered once it got a 2xx


def test_webhook_to_a_metadata_address_is_never_sent(stack: Stack) -> None:
    job_id = stack.submit(
        text=fresh_text("single_sentence.txt"), callback_url="http://169.254.169.254/hook"
    )["job_id"]
    assert stack.wait_job(job_id)["status"] == "succeeded"
    wait_until(
        lambda: "webhook_refused" in (stack.log_dir / "worker.log").read_text(),
        15,
        what="the refusal",
    )
    with stack.client() as client:
        refused = client.post(
            "/v1/articles", json={"text": "A sentence.", "callback_url": "ftp://x/y"}
        )
    assert refused.status_code == 422


def test_a_polled_job_is_answered_from_memory_until_it_changes(stack: Stack) -> None:
    # The cache keeps an answer up to EVENHAND_JOB_CACHE_SECONDS (10 s); the worker's
    # announcement of the job's end must drop it, so polling sees the end at once.
    job_id = _running_job(stack, latency=3)
    hits = metric(_api_metrics(stack), "evenhand_job_cache_lookups_total", result="hit")
    with stack.client() as client:
        assert [client.get(f"/v1/jobs/{job_id}").json()["status"] for _ in range(3)] == [
            "running"
        ] * 3
        assert metric(_api_metrics(stack), "evenhand_job_cache_lookups_total", result="hit") > hits

        def seen_succeeded() -> bool:
            return client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

        wait_until(seen_succeeded, 30, interval=0.05, what="the job to succeed")
        seen_at = time.time()
        job = client.get(f"/v1/jobs/{job_id}").json()
    finished_at = datetime.fromisoformat(job["finished_at"]).timestamp()
    assert seen_at - finished_at < 1.5, "the cached answer outlived the job's change"
    assert job["result"]["summary"]


def test_a_canceled_job_reads_canceled_right_after_the_cancel(stack: Stack) -> None:
    job_id = _running_job(stack, latency=5)
    with stack.client() as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"  # now cached
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "canceled"
        retried = client.post(f"/v1/jobs/{job_id}/retry")
        assert retried.status_code == 202
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running")
    stack.llm.control(latency=0)
    assert stack.wait_job(job_id)["status"] == "succeeded"
