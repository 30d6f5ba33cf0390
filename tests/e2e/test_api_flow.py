"""An article in over HTTP, a result out of a real worker: API -> Redis -> worker -> LLM -> database.

Every test here runs twice, on SQLite and on PostgreSQL (the `stack` fixture).
"""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from testkit.fixtures import fixture_text, fresh_text
from testkit.stack import Stack, wait_until
from worker.prompts import PROMPT_VERSION

pytestmark = pytest.mark.e2e

RESULT_KEYS = {
    "article_type", "thesis", "summary", "argument_points", "loaded_language", "provider",
    "model", "prompt_version", "usage", "grounding", "cleaning", "neutrality", "defaulted",
}  # fmt: skip


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert body["detail"] and "Traceback" not in response.text
    return body


def test_opinion_article_goes_through_the_whole_pipeline(stack: Stack) -> None:
    raw = fresh_text("opinion_boilerplate.txt")
    with stack.client() as client:
        response = client.post(
            "/v1/articles", json={"text": raw, "title": "A column", "language": "en"}
        )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert response.headers["location"] == f"/v1/jobs/{accepted['job_id']}"

    job = stack.wait_job(accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    result = job["result"]
    assert set(result) == RESULT_KEYS
    assert result["provider"] == "openai"
    assert result["model"] == "stand-in-model"
    assert result["prompt_version"] == PROMPT_VERSION  # the prompt the result was made with
    assert result["usage"]["llm_calls"] == 1
    assert result["usage"]["prompt_tokens"] > 0 and result["usage"]["completion_tokens"] > 0
    assert result["article_type"] in {"opinion", "news", "analysis", "other"}
    assert result["summary"] and result["thesis"]

    with stack.client() as client:
        article = client.get(f"/v1/articles/{accepted['article_id']}").json()
    clean = article["clean_text"]
    assert "story continues below" not in clean.lower()
    assert result["cleaning"]["chars_in"] == len(raw)
    assert result["cleaning"]["chars_kept"] == len(clean)
    assert result["cleaning"]["lines_removed"] > 0

    evidence = [ev for point in result["argument_points"] for ev in point["evidence"]]
    assert evidence, "the stand-in quotes sentences of the article"
    assert result["grounding"] == {
        "quotes": len(evidence),
        "verified": sum(ev["verified"] for ev in evidence),
        # this stack runs without the support check (tests/e2e/test_support.py runs it)
        "supports": 0,
        "partial": 0,
        "unrelated": 0,
    }
    assert all(ev["support"] is None for ev in evidence)
    assert result["grounding"]["verified"] == len(evidence)  # the stand-in quotes verbatim
    for ev in evidence:
        assert clean[ev["start"] : ev["end"]] == ev["quote"]
    for term in result["loaded_language"]:
        assert clean[term["start"] : term["end"]].lower() == term["term"].lower()
    assert article["result"] == result


def test_article_is_sent_to_the_llm_as_delimited_data(stack: Stack) -> None:
    accepted = stack.submit(text=fresh_text("opinion_boilerplate.txt"))
    assert stack.wait_job(accepted["job_id"])["status"] == "succeeded"
    request = stack.llm.stats()["last_request"]
    system, user = request["messages"][0], request["messages"][-1]
    assert system["role"] == "system" and user["role"] == "user"
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{accepted['article_id']}").json()["clean_text"]
    first_line = clean.splitlines()[0]
    assert first_line not in system["content"]
    body = user["content"].split("<article>\n", 1)[1].rsplit("\n</article>", 1)[0]
    assert body == clean


def test_plain_text_body(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post(
            "/v1/articles",
            content=fixture_text("news_multiple_sides.txt").encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
    assert response.status_code == 202, response.text
    assert stack.wait_job(response.json()["job_id"])["status"] == "succeeded"


def test_html_page_is_reduced_to_its_article(stack: Stack) -> None:
    accepted = stack.submit(html=fixture_text("article_page.html"))
    job = stack.wait_job(accepted["job_id"])
    assert job["status"] == "succeeded", job
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{accepted['article_id']}").json()["clean_text"]
    assert "cookie" not in clean.lower()
    assert "<p>" not in clean and len(clean) > 500


def test_long_poll_holds_until_the_job_ends(stack: Stack) -> None:
    stack.llm.control(latency=1.5)
    accepted = stack.submit(text=fresh_text("single_sentence.txt"))
    with stack.client() as client:
        early = client.get(f"/v1/jobs/{accepted['job_id']}").json()
        assert early["status"] in {"queued", "running"}
        held = client.get(f"/v1/jobs/{accepted['job_id']}", params={"wait": 30}).json()
    assert held["status"] == "succeeded"


def test_llm_auth_failure_fails_the_job_with_a_code(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "auth", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "llm_auth_failed"
    assert "credentials" in job["error"]["message"]
    assert job["result"] is None


def test_invalid_llm_output_gets_one_repair_round(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "bad_json_content", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["llm_calls"] == 2


def test_boilerplate_only_fails_with_no_article_text(stack: Stack) -> None:
    job = stack.wait_job(stack.submit(text=fixture_text("boilerplate_only.txt"))["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "no_article_text"


def test_another_keys_job_and_article_are_404(stack: Stack) -> None:
    other = stack.new_key("other-tenant")
    accepted = stack.submit(text=fresh_text("single_sentence.txt"))
    with stack.client(other) as client:
        foreign_job = assert_problem(client.get(f"/v1/jobs/{accepted['job_id']}"), 404)
        missing_job = assert_problem(client.get(f"/v1/jobs/{uuid.uuid4()}"), 404)
        assert_problem(client.get(f"/v1/articles/{accepted['article_id']}"), 404)
    assert {k: v for k, v in foreign_job.items() if k != "detail"} == {
        k: v for k, v in missing_job.items() if k != "detail"
    }
    stack.wait_job(accepted["job_id"])


def test_missing_wrong_and_revoked_keys_get_401(stack: Stack) -> None:
    assert_problem(httpx.get(f"{stack.api_url}/v1/jobs/{uuid.uuid4()}"), 401)
    with stack.client("eh_not-a-key") as client:
        assert_problem(client.post("/v1/articles", json={"text": "x"}), 401)
    doomed = stack.new_key("doomed")
    with stack.client(doomed) as client:
        assert client.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404
    listing = stack.run_cli("keys", "list").stdout
    assert doomed not in listing and doomed[:11] in listing
    key_id = next(line.split("│")[1].strip() for line in listing.splitlines() if "doomed" in line)
    stack.run_cli("keys", "revoke", key_id)
    # the API trusts a key it looked up for EVENHAND_KEY_CACHE_SECONDS (5 s by default)
    with stack.client(doomed) as client:
        wait_until(
            lambda: client.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 401,
            15,
            interval=0.5,
            what="the revoked key to be refused",
        )
        assert_problem(client.get(f"/v1/jobs/{uuid.uuid4()}"), 401)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {}}, 422),
        ({"json": {"text": "a", "html": "<p>b</p>"}}, 422),
        ({"json": {"text": "   "}}, 422),
        ({"json": {"text": "ok", "unknown_field": 1}}, 422),
        ({"json": {"text": 5}}, 422),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": "text/plain"}}, 400),
        ({"content": b"x", "headers": {"Content-Type": "application/xml"}}, 415),
        ({"content": b"x" * 2_100_000, "headers": {"Content-Type": "text/plain"}}, 413),
    ],
)
def test_bad_submissions_get_problem_json(stack: Stack, kwargs: dict, status: int) -> None:
    with stack.client() as client:
        assert_problem(client.post("/v1/articles", **kwargs), status)


def test_bad_job_queries_get_problem_json(stack: Stack) -> None:
    with stack.client() as client:
        assert_problem(client.get("/v1/jobs/not-a-uuid"), 422)
        assert_problem(client.get(f"/v1/jobs/{uuid.uuid4()}", params={"wait": 31}), 422)
        assert_problem(client.get("/v1/nothing-here"), 404)


def test_health_and_readiness(stack: Stack) -> None:
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.api_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_logs_are_json_with_context_and_hold_no_key_or_article_text(stack: Stack) -> None:
    canary = "The zebra-striped lighthouse keeper insists on canary 5c81d2 for every meeting."
    text = fixture_text("news_multiple_sides.txt") + "\n" + canary + "\n"
    accepted = stack.submit(text=text)
    assert stack.wait_job(accepted["job_id"])["status"] == "succeeded"
    logs = stack.logs()
    assert "5c81d2" not in logs
    assert stack.key not in logs and stack.key[12:] not in logs
    worker_events = [
        json.loads(line)
        for line in (stack.log_dir / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    finished = [
        e
        for e in worker_events
        if e.get("job_id") == accepted["job_id"] and e["event"] == "job_finished"
    ]
    assert finished and finished[0]["task_id"]
    api_events = [
        json.loads(line)
        for line in (stack.log_dir / "api.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(e.get("request_id") for e in api_events)
    # the request id comes back: the client's own, else a new one
    with stack.client() as client:
        assert (
            client.get("/healthz", headers={"X-Request-ID": "trace-7"}).headers["X-Request-ID"]
            == "trace-7"
        )
        assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_many_long_polls_do_not_starve_the_api(stack: Stack) -> None:
    # Each waiting request once held a pooled connection for its whole wait: 32 of them froze
    # the API (found by the benchmarks). Now a wait holds no connection between its reads.
    stack.llm.control(latency=3)
    job_id = stack.submit(text=fresh_text("single_sentence.txt"))["job_id"]
    with stack.client() as client, ThreadPoolExecutor(max_workers=48) as pool:
        waits = [
            pool.submit(client.get, f"/v1/jobs/{job_id}", params={"wait": 20}) for _ in range(48)
        ]
        time.sleep(1)  # all of them waiting now
        assert client.get("/healthz", timeout=5).status_code == 200
        assert client.get(f"/v1/jobs/{job_id}", timeout=5).status_code == 200
        answers = [w.result(timeout=60) for w in waits]
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status"] for a in answers} == {"succeeded"}
