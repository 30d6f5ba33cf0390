"""Results without polling (server-sent events, webhooks) and Prometheus metrics, on the real
stack."""

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

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
    """A webhook receiver on loopback that fails its first `fail_first` deliveries."""

    deliveries: list[tuple[dict[str, str], bytes]]
    arrivals: list[float]  # time.monotonic() of each delivery
    fail_first: int
    url: str

    def do_POST(self) -> None:
        self.arrivals.append(time.monotonic())
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.deliveries.append((dict(self.headers), body))
        status = 500 if len(self.deliveries) <= self.fail_first else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def receiving(fail_first: int) -> Iterator[type[Receiver]]:
    attributes = {"deliveries": [], "arrivals": [], "fail_first": fail_first}
    handler: type[Receiver] = type("R", (Receiver,), attributes)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/evenhand"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler
    finally:
        server.shutdown()
        thread.join(5)


def worker_events(stack: Stack, job_id: str, event: str) -> list[dict]:
    lines = (stack.log_dir / "worker.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in events if e.get("job_id") == job_id and e["event"] == event]


def test_webhook_is_signed_and_retried(stack: Stack) -> None:
    with receiving(fail_first=1) as receiver:
        job_id = stack.submit(
            text=fresh_text("single_sentence.txt"),
            callback_url=receiver.url,
        )["job_id"]
        assert stack.wait_job(job_id)["status"] == "succeeded"
        wait_until(
            lambda: worker_events(stack, job_id, "webhook_delivered"),
            30,
            what="the retried webhook delivery",
        )
    deliveries = receiver.deliveries
    assert len(deliveries) == 2  # delivered once it got a 2xx, not again
    headers, body = deliveries[-1]
    secret = hashlib.sha256(stack.key.encode()).hexdigest()  # the receiver derives it from its key
    expected = hmac.new(
        secret.encode(), headers["X-Evenhand-Timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["X-Evenhand-Signature"] == "sha256=" + expected.hexdigest()
    job = json.loads(body)
    assert job["id"] == job_id and job["status"] == "succeeded" and job["result"]["summary"]
    assert deliveries[0][1] == body  # the retry sends the same job


def test_webhook_retries_back_off_and_stop_after_max_attempts(stack: Stack) -> None:
    attempts = int(stack.env["EVENHAND_WEBHOOK_MAX_ATTEMPTS"])
    backoff = int(stack.env["EVENHAND_WEBHOOK_BACKOFF"])
    with receiving(fail_first=1000) as receiver:  # never answers 2xx
        job_id = stack.submit(
            text=fresh_text("single_sentence.txt"),
            callback_url=receiver.url,
        )["job_id"]
        assert stack.wait_job(job_id)["status"] == "succeeded"
        given_up = wait_until(
            lambda: worker_events(stack, job_id, "webhook_given_up"),
            10 + backoff * 2**attempts,
            what="the last webhook delivery",
        )
    # the last failure ends the task: exactly max attempts deliveries, then no more
    assert len(receiver.deliveries) == attempts
    assert given_up[0]["attempts"] == attempts and given_up[0]["reason"] == "status 500"
    retries = worker_events(stack, job_id, "webhook_retry")
    assert [r["attempt"] for r in retries] == list(range(1, attempts))
    gaps = [b - a for a, b in pairwise(receiver.arrivals)]
    for n, (retry, gap) in enumerate(zip(retries, gaps, strict=True)):
        # the n-th wait is drawn from 0..backoff*2**n whole seconds, and the worker keeps it
        assert 0 <= retry["countdown"] <= backoff * 2**n
        assert gap >= retry["countdown"] - 0.05


def test_webhook_to_a_metadata_address_is_never_sent(stack: Stack) -> None:
    # refused at submit; a name that resolves to one is refused by the worker before every
    # delivery (worker.webhooks, tests/unit/test_fetch.py)
    with stack.client() as client:
        for callback_url in ("http://169.254.169.254/hook", "ftp://x/y"):
            refused = client.post(
                "/v1/articles", json={"text": "A sentence.", "callback_url": callback_url}
            )
            assert refused.status_code == 422
            assert "callback_url" in refused.json()["detail"]


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
