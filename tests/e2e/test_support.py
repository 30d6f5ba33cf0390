"""The support check through the real stack: with an LLM provider, each verified quote gets a
verdict on its claim from one more schema-bound call (the offline provider judges nothing:
tests/unit/test_stages.py)."""

import pytest

from testkit.fixtures import fresh_text
from testkit.stack import Stack
from worker.prompts import curly_quotes

pytestmark = pytest.mark.e2e


def _evidence(job: dict) -> list[dict]:
    return [ev for point in job["result"]["argument_points"] for ev in point["evidence"]]


def test_each_verified_quote_gets_the_verdict_the_model_gave(support_stack: Stack) -> None:
    support_stack.llm.control(support="cycle", requests_log=True)
    job = support_stack.wait_job(
        support_stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"]
    )
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["usage"]["llm_calls"] == 2  # the draft, then one support check
    # the check saw each claim with its verified quotes, and nothing else of the article
    check = support_stack.llm.requests()[-1]
    listing = check["messages"][-1]["content"]
    verified = [ev for ev in _evidence(job) if ev["verified"]]
    # as the prompt writes it: one line per quote, straight double quotes as typographic ones
    listed = [curly_quotes(ev["quote"].replace("\n", " ")) for ev in verified]
    assert verified and all(quote in listing for quote in listed)
    verdicts = [ev["support"] for ev in verified]
    assert verdicts == [("supports", "partial", "unrelated")[n % 3] for n in range(len(verified))]
    grounding = result["grounding"]
    assert (grounding["supports"], grounding["partial"], grounding["unrelated"]) == (
        verdicts.count("supports"),
        verdicts.count("partial"),
        verdicts.count("unrelated"),
    )


def test_unverified_quotes_are_not_judged(support_stack: Stack) -> None:
    support_stack.llm.control(faults=[{"kind": "bad_quotes", "count": 1}], support="supports")
    job = support_stack.wait_job(
        support_stack.submit(text=fresh_text("opinion_boilerplate.txt"))["job_id"]
    )
    assert job["status"] == "succeeded", job
    for ev in _evidence(job):
        assert ev["support"] == ("supports" if ev["verified"] else None)


def test_a_failing_check_leaves_quotes_not_judged_and_the_job_succeeds(
    support_stack: Stack,
) -> None:
    support_stack.llm.control(support="invalid")  # verdicts outside the schema, also on the repair
    job = support_stack.wait_job(
        support_stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"]
    )
    assert job["status"] == "succeeded", job
    assert job["result"]["usage"]["llm_calls"] == 3  # the draft, the check and its repair
    assert all(ev["support"] is None for ev in _evidence(job))
    assert job["result"]["grounding"]["supports"] == 0
