"""Hostile callers and hostile articles: keys, tenant isolation, limits and quotas, malformed
input, prompt injection. Through the real API and worker, on SQLite and PostgreSQL."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import httpx
import pytest
import requests

from testkit.fixtures import fresh_text
from testkit.stack import Stack, wait_until

pytestmark = pytest.mark.e2e

sqlite_only = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


def test_every_route_is_scoped_to_its_key(stack: Stack) -> None:
    mine = stack.new_key("tenant-a")
    theirs = stack.new_key("tenant-b")
    accepted = stack.submit(key=mine, text=fresh_text("single_sentence.txt"))
    stack.wait_job(accepted["job_id"], key=mine)
    job, article = accepted["job_id"], accepted["article_id"]
    with stack.client(theirs) as other:
        assert other.get(f"/v1/jobs/{job}").status_code == 404
        assert other.delete(f"/v1/jobs/{job}").status_code == 404
        assert other.post(f"/v1/jobs/{job}/retry").status_code == 404
        assert other.get(f"/v1/articles/{article}").status_code == 404
        assert all(item["id"] != job for item in other.get("/v1/jobs").json()["items"])
    with stack.client(mine) as client:
        listed = client.get("/v1/jobs").json()["items"]
        assert [item["id"] for item in listed] == [job]


def test_job_list_pages_with_a_cursor_and_filters_by_status(stack: Stack) -> None:
    key = stack.new_key("pager")
    stack.llm.control(faults=[{"kind": "auth", "count": 1}])
    failed = stack.submit(key=key, text=fresh_text("news_multiple_sides.txt"))["job_id"]
    stack.wait_job(failed, key=key)
    done = [
        stack.submit(key=key, text=fresh_text("single_sentence.txt"))["job_id"] for _ in range(3)
    ]
    for job_id in done:
        stack.wait_job(job_id, key=key)
    seen: list[str] = []
    with stack.client(key) as client:
        cursor = None
        for _ in range(10):  # bounded: 4 jobs, 2 per page
            page = client.get(
                "/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [item["id"] for item in page["items"]]
            assert all(item["result"] is None for item in page["items"])  # lists stay light
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [*reversed(done), failed]  # newest first, each once
        only_failed = client.get("/v1/jobs", params={"status": "failed"}).json()["items"]
        assert [item["id"] for item in only_failed] == [failed]
        assert only_failed[0]["error"]["code"] == "llm_auth_failed"
        assert client.get("/v1/jobs", params={"cursor": "not-a-cursor"}).status_code == 422
        assert client.get("/v1/jobs", params={"limit": 1000}).status_code == 422


def test_every_v1_route_requires_a_key(stack: Stack) -> None:
    schema = httpx.get(f"{stack.api_url}/openapi.json").json()
    routes = [
        (
            method,
            path.replace("{job_id}", str(uuid.uuid4())).replace("{article_id}", str(uuid.uuid4())),
        )
        for path, operations in schema["paths"].items()
        if path.startswith("/v1")
        for method in operations
    ]
    assert len(routes) >= 6
    for method, path in routes:
        response = httpx.request(method, f"{stack.api_url}{path}")
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_rate_limit_per_key_answers_429_with_retry_after(stack: Stack) -> None:
    limited = stack.run_cli(
        "keys", "create", "limited", "--rate-limit", "3/minute"
    ).stdout.splitlines()[-1]
    with stack.client(limited) as client:
        assert [client.get("/v1/jobs").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/v1/jobs")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    # sliding window: the rest of this window, plus the part of the next its 3 requests weigh
    assert 1 <= int(refused.headers["retry-after"]) <= 60 + 20
    assert "3 per 1 minute" in refused.json()["detail"]
    with stack.client() as client:  # other keys are not affected
        assert client.get("/v1/jobs").status_code == 200


def test_daily_job_quota(stack: Stack) -> None:
    key = stack.run_cli("keys", "create", "two-a-day", "--daily-jobs", "2").stdout.splitlines()[-1]
    for _ in range(2):
        stack.submit(key=key, text=fresh_text("single_sentence.txt"))
    with stack.client(key) as client:
        refused = client.post("/v1/articles", json={"text": fresh_text("single_sentence.txt")})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Daily quota of 2 articles" in refused.json()["detail"]


def test_daily_token_quota(stack: Stack) -> None:
    key = stack.run_cli("keys", "create", "thrifty", "--daily-tokens", "100").stdout.splitlines()[
        -1
    ]
    first = stack.wait_job(
        stack.submit(key=key, text=fresh_text("news_multiple_sides.txt"))["job_id"], key=key
    )
    usage = first["result"]["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] > 100

    def refused() -> httpx.Response | None:
        # the API reads a key's token use at most once per second (docs/security.md)
        with stack.client(key) as client:
            answer = client.post("/v1/articles", json={"text": fresh_text("single_sentence.txt")})
        return answer if answer.status_code == 429 else None

    answer = wait_until(refused, 10, interval=0.2, what="the token quota to refuse a submit")
    assert "LLM tokens" in answer.json()["detail"]


def test_nesting_and_depth_limits(stack: Stack) -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    with stack.client() as client:
        too_deep = client.post(
            "/v1/articles",
            content=f'{{"text": "A sentence.", "metadata": {{"a": {nested(40)}}}}}',
            headers={"Content-Type": "application/json"},
        )
        assert too_deep.status_code == 422 and "nested deeper" in too_deep.json()["detail"]
        bomb = client.post(
            "/v1/articles",
            content=f'{{"text": "A sentence.", "metadata": {nested(100_000)}}}',
            headers={"Content-Type": "application/json"},
        )
        assert bomb.status_code == 422 and "Traceback" not in bomb.text


def _prose(result: dict) -> str:
    """Everything in a result the model wrote itself (evidence quotes are checked separately)."""
    parts = [result["summary"], result["thesis"]]
    for point in result["argument_points"]:
        parts += [point["claim"], point["speaker"], *point["premises"]]
    return "\n".join(parts)


@pytest.mark.parametrize("fault", [None, "injected_links"])
def test_injection_leaves_no_canary_and_no_foreign_links(stack: Stack, fault: str | None) -> None:
    if fault:  # a model that obeyed the article's instructions
        stack.llm.control(faults=[{"kind": fault, "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("prompt_injection.txt"))["job_id"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    prose = _prose(result)
    for planted in ("CANARY", "evil.example", "phish.example", "![", "](http"):
        assert planted not in prose
    assert all("CANARY" not in term["term"] for term in result["loaded_language"])
    # a quote may repeat the article's own words, and then it must be verbatim
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{job['article_id']}").json()["clean_text"]
    for point in result["argument_points"]:
        for ev in point["evidence"]:
            assert ev["verified"] and clean[ev["start"] : ev["end"]] == ev["quote"]
    assert set(result) >= {"summary", "thesis", "argument_points", "grounding"}  # shape unchanged


@sqlite_only
def test_schemathesis_finds_no_server_error_and_no_schema_violation(stack: Stack) -> None:
    key = stack.run_cli(
        "keys", "create", "fuzzer", "--rate-limit", "100000/minute"
    ).stdout.splitlines()[-1]
    done = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{stack.api_url}/openapi.json",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "not_a_server_error,response_schema_conformance,ignored_auth",
            "--max-examples", "30", "--seed", "7", "--request-timeout", "40",
        ],
        capture_output=True, text=True, timeout=600, cwd=stack.log_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:]


OVERSIZED = b"x" * 12_000_000  # six times EVENHAND_MAX_BODY_BYTES's default


def _oversized_with_curl(stack: Stack) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "--data-binary", "@-",
         "-H", f"Authorization: Bearer {stack.key}", "-H", "Content-Type: text/plain",
         f"{stack.api_url}/v1/articles"],
        input=OVERSIZED, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    body, _, status = done.stdout.decode().rpartition("\n")
    return int(status), body


def _oversized_with_httpx(stack: Stack) -> tuple[int, str]:
    with stack.client() as client:
        response = client.post(
            "/v1/articles", content=OVERSIZED, headers={"Content-Type": "text/plain"}
        )
    return response.status_code, response.text


def _oversized_with_urllib(stack: Stack) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{stack.api_url}/v1/articles",
        data=OVERSIZED,
        headers={"Authorization": f"Bearer {stack.key}", "Content-Type": "text/plain"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _oversized_with_requests(stack: Stack) -> tuple[int, str]:
    response = requests.post(
        f"{stack.api_url}/v1/articles",
        data=OVERSIZED,
        headers={"Authorization": f"Bearer {stack.key}", "Content-Type": "text/plain"},
        timeout=60,
    )
    return response.status_code, response.text


@pytest.mark.parametrize(
    "send",
    [_oversized_with_curl, _oversized_with_httpx, _oversized_with_urllib, _oversized_with_requests],
    ids=["curl", "httpx", "urllib", "requests"],
)
def test_every_client_reads_the_413_of_an_oversized_body(stack: Stack, send) -> None:  # type: ignore[no-untyped-def]
    status, body = send(stack)
    assert status == 413
    assert "larger than 2000000 bytes" in json.loads(body)["detail"]


REFUSED_AT_SUBMIT = [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://2852039166/", "cloud metadata address"),  # 169.254.169.254 as one number
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address embedded"),
    ("http://localhost:22/", "loopback name"),
    ("http://user:pw@example.com/", "credentials"),
    ("http://224.0.0.1/", "multicast address"),
    ("file:///etc/passwd", "only http and https"),
]


def _says_what_to_fix(response: httpx.Response, words: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert words in detail and "public internet" in detail, detail
    assert "pattern" not in detail and "(?i" not in detail, detail


@pytest.mark.parametrize(("url", "words"), REFUSED_AT_SUBMIT)
def test_a_url_never_fetchable_is_refused_at_submit_in_words(
    stack: Stack, url: str, words: str
) -> None:
    with stack.client() as client:
        _says_what_to_fix(client.post("/v1/articles", json={"url": url}), words)
        _says_what_to_fix(
            client.post("/v1/articles", json={"text": "A sentence.", "callback_url": url}), words
        )
        batch = {"articles": [{"text": "A sentence."}, {"url": url}]}
        _says_what_to_fix(client.post("/v1/batches", json=batch), words)
        assert "articles[1].url" in client.post("/v1/batches", json=batch).json()["detail"]


def test_allow_private_lets_loopback_through_at_submit(stack: Stack) -> None:
    # the stack runs with EVENHAND_FETCH_ALLOW_PRIVATE=true, as development does
    with stack.client() as client:
        response = client.post("/v1/articles", json={"url": "http://127.0.0.1:9/none"})
    assert response.status_code == 202, response.text
    job = stack.wait_job(response.json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "fetch_failed"


def test_a_bad_idempotency_key_is_named_in_words(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post(
            "/v1/articles", json={"text": "A sentence."}, headers={"Idempotency-Key": "k" * 201}
        )
    assert response.status_code == 422
    assert "the Idempotency-Key header is longer than 200 characters" in response.json()["detail"]
