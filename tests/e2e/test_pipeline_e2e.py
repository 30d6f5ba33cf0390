"""The summarization pipeline through the real API and worker: inputs, structured output,
grounding, neutrality, long articles, dedupe and idempotency. Runs on SQLite and PostgreSQL."""

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testkit.fixtures import fixture_text, fresh_text
from testkit.fixtures.essay import make_essay
from testkit.stack import Stack

pytestmark = pytest.mark.e2e


class _Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    handler = type("Page", (_Page,), {"body": fixture_text("article_page.html").encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/opinion/transit"
    server.shutdown()
    thread.join(5)


def evidence_of(job: dict) -> list[dict]:
    return [ev for point in job["result"]["argument_points"] for ev in point["evidence"]]


# --- three ways in --------------------------------------------------------------------------------


def test_url_input_is_fetched_by_the_worker(stack: Stack, page_url: str) -> None:
    accepted = stack.submit(url=page_url)
    job = stack.wait_job(accepted["job_id"])
    assert job["status"] == "succeeded", job
    with stack.client() as client:
        article = client.get(f"/v1/articles/{accepted['article_id']}").json()
    assert article["url"] == page_url and article["input_kind"] == "url"
    assert "cookie" not in article["clean_text"].lower() and len(article["clean_text"]) > 500
    assert job["result"]["grounding"]["verified"] == job["result"]["grounding"]["quotes"] > 0


def test_metadata_address_is_refused_at_the_door(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post("/v1/articles", json={"url": "http://169.254.169.254/latest/"})
    assert response.status_code == 422
    assert "cloud metadata address" in response.json()["detail"]


def test_non_http_url_is_refused_at_the_door(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post("/v1/articles", json={"url": "file:///etc/passwd"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


# --- structured output ----------------------------------------------------------------------------


def test_truncated_answer_is_repaired_once_then_fails_with_a_code(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "length", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "succeeded" and job["result"]["usage"]["llm_calls"] == 2
    stack.llm.control(faults=[{"kind": "refusal", "count": 2}])
    job = stack.wait_job(stack.submit(text=fresh_text("single_sentence.txt"))["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "llm_refused"


# --- grounding ------------------------------------------------------------------------------------


def test_unverifiable_quotes_get_one_repair_round(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "bad_quotes", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["llm_calls"] == 2
    assert all(ev["verified"] for ev in evidence_of(job))


def test_quotes_that_stay_unverifiable_are_kept_and_marked(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "bad_quotes", "count": 2}])
    job = stack.wait_job(stack.submit(text=fresh_text("opinion_boilerplate.txt"))["job_id"])
    assert job["status"] == "succeeded", job
    evidence = evidence_of(job)
    # the model's reworded quotes stay, marked unverified; the only verified ones are those of
    # positions the refine stage added from the text (claim and quote: the reported sentence)
    added = [
        ev
        for point in job["result"]["argument_points"]
        for ev in point["evidence"]
        if ev["quote"] == point["claim"]
    ]
    assert any(not ev["verified"] for ev in evidence)
    assert all(ev in added for ev in evidence if ev["verified"])
    grounding = job["result"]["grounding"]
    verified = sum(ev["verified"] for ev in evidence)
    assert (grounding["quotes"], grounding["verified"]) == (len(evidence), verified)


# --- neutrality -----------------------------------------------------------------------------------


def test_loaded_summary_gets_one_repair_round(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "loaded_summary", "count": 1}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["llm_calls"] == 2
    assert job["result"]["neutrality"]["summary_loaded_terms"] == []
    assert "disastrous" not in job["result"]["summary"]


def test_loaded_terms_that_remain_are_reported(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "loaded_summary", "count": 2}])
    job = stack.wait_job(stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"])
    summary = job["result"]["summary"]
    reported = job["result"]["neutrality"]["summary_loaded_terms"]
    assert {t["term"].lower() for t in reported} >= {"disastrous", "shameful"}
    for term in reported:
        assert summary[term["start"] : term["end"]] == term["term"]


def test_source_loaded_terms_are_listed_with_offsets(stack: Stack) -> None:
    accepted = stack.submit(text=fresh_text("opinion_boilerplate.txt"))
    job = stack.wait_job(accepted["job_id"])
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{accepted['article_id']}").json()["clean_text"]
    terms = job["result"]["loaded_language"]
    assert terms
    for term in terms:
        assert clean[term["start"] : term["end"]] == term["term"]


# --- long articles --------------------------------------------------------------------------------


def test_long_essay_goes_through_map_reduce(stack: Stack) -> None:
    essay = make_essay()
    assert len(essay) > 100_000
    # the stand-in refuses any request over 60,000 characters, as a model's context would
    stack.llm.control(max_context_chars=60_000, requests_log=True)
    accepted = stack.submit(text=essay, title="A long essay")
    job = stack.wait_job(accepted["job_id"], timeout=120)
    assert job["status"] == "succeeded", job
    requests = stack.llm.requests()
    names = [r["response_format"]["json_schema"]["name"] for r in requests]
    assert names.count("mapdraft") >= 3 and names[-1] == "reducedraft"
    assert job["result"]["usage"]["llm_calls"] == len(requests)
    evidence = evidence_of(job)
    assert all(ev["verified"] for ev in evidence)
    # quotes come from every part of the essay, located in the whole text
    assert (
        min(ev["start"] for ev in evidence) < 30_000
        and max(ev["start"] for ev in evidence) > 70_000
    )
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{accepted['article_id']}").json()["clean_text"]
    for ev in evidence:
        assert clean[ev["start"] : ev["end"]] == ev["quote"]


# --- dedupe and idempotency -----------------------------------------------------------------------


def test_same_clean_text_reuses_the_stored_result(stack: Stack) -> None:
    text = (
        fixture_text("news_multiple_sides.txt")
        + f"\nA unique closing line {uuid.uuid4()} for this test.\n"
    )
    first = stack.wait_job(stack.submit(text=text)["job_id"])
    calls_before = stack.llm.stats()["requests"]
    # the same article with scraped boilerplate around it cleans to the same text
    second = stack.wait_job(
        stack.submit(text="Advertisement\n" + text + "Share this article\n")["job_id"]
    )
    assert second["status"] == "succeeded"
    assert stack.llm.stats()["requests"] == calls_before
    assert second["result"]["usage"]["llm_calls"] == 0
    assert second["result"]["summary"] == first["result"]["summary"]
    assert second["result"]["argument_points"] == first["result"]["argument_points"]
    assert (
        second["result"]["cleaning"]["lines_removed"]
        == first["result"]["cleaning"]["lines_removed"] + 2
    )


def test_idempotency_key_replays_the_first_answer(stack: Stack) -> None:
    key = f"order-{uuid.uuid4()}"
    body = {"text": fixture_text("single_sentence.txt"), "title": "Once"}
    with stack.client() as client:
        first = client.post("/v1/articles", json=body, headers={"Idempotency-Key": key})
        again = client.post("/v1/articles", json=body, headers={"Idempotency-Key": key})
        other_body = client.post(
            "/v1/articles", json={**body, "title": "Twice"}, headers={"Idempotency-Key": key}
        )
        fresh = client.post("/v1/articles", json=body, headers={"Idempotency-Key": key + "-new"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert other_body.status_code == 422
    assert "different request body" in other_body.json()["detail"]
    assert fresh.status_code == 202 and fresh.json()["job_id"] != first.json()["job_id"]
    # keys are per tenant: another key's use of the same Idempotency-Key is its own request
    with stack.client(stack.new_key("idem-other")) as client:
        theirs = client.post("/v1/articles", json=body, headers={"Idempotency-Key": key})
    assert theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]


# --- hostile and messy input ----------------------------------------------------------------------


def test_injection_stays_data_and_cannot_forge_the_delimiter(stack: Stack) -> None:
    stack.llm.control(requests_log=True)
    job = stack.wait_job(stack.submit(text=fresh_text("prompt_injection.txt"))["job_id"])
    assert job["status"] == "succeeded"
    (request,) = stack.llm.requests()
    system, user = request["messages"][0]["content"], request["messages"][-1]["content"]
    assert "CANARY" not in system and "Ignore all previous instructions" not in system
    assert user.count("</article>") == 1 and user.rstrip().endswith("</article>")
    assert set(job["result"]) >= {"summary", "argument_points", "grounding"}


def test_unicode_mess_is_normalised_and_grounded(stack: Stack) -> None:
    accepted = stack.submit(text=fresh_text("unicode_mess.txt"))
    job = stack.wait_job(accepted["job_id"])
    assert job["status"] == "succeeded", job
    with stack.client() as client:
        clean = client.get(f"/v1/articles/{accepted['article_id']}").json()["clean_text"]
    for invisible in ("\u200b", "\u200d", "\ufeff", "\u202e", "\u00ad", "\r", "\u00a0"):
        assert invisible not in clean
    for ev in evidence_of(job):
        assert ev["verified"] and clean[ev["start"] : ev["end"]] == ev["quote"]


def test_language_is_passed_to_the_model(stack: Stack) -> None:
    stack.llm.control(requests_log=True)
    job = stack.wait_job(
        stack.submit(text=fresh_text("non_english_column.txt"), language="es")["job_id"]
    )
    assert job["status"] == "succeeded"
    assert "'es'" in stack.llm.requests()[0]["messages"][0]["content"]
