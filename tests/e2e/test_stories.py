"""Stories through the real stack: API -> one job per article -> the comparison task -> stored
result -> long-poll; a failing article; a worker SIGKILLed mid-comparison; keys; bad input."""

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from testkit.fixtures import STORY_ANGLES, fixture_text, story_articles
from testkit.stack import Stack, wait_until

pytestmark = pytest.mark.e2e


def submit_story(stack: Stack, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    with stack.client(key) as client:
        response = client.post("/v1/stories", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["location"] == f"/v1/stories/{accepted['story_id']}"
    return accepted


def wait_story(stack: Stack, story_id: str, timeout: float = 90) -> dict[str, Any]:
    """Long-poll the story until it ends; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while True:
            remaining = deadline - time.monotonic()
            response = client.get(
                f"/v1/stories/{story_id}", params={"wait": max(0, min(5, remaining))}
            )
            assert response.status_code == 200, response.text
            story = response.json()
            if story["status"] in ("succeeded", "failed"):
                return story
            if remaining <= 0:
                raise TimeoutError(f"story {story_id} still {story['status']} after {timeout}s")


def assert_quotes_verify(stack: Stack, result: dict[str, Any]) -> int:
    """Every quote lies at its offsets in its own article's clean text; how many there are."""
    with stack.client() as client:
        texts = {
            outlet["article_id"]: client.get(f"/v1/articles/{outlet['article_id']}").json()[
                "clean_text"
            ]
            for outlet in result["outlets"]
            if outlet["status"] == "succeeded"
        }
    count = 0
    for cluster in result["clusters"]:
        for member in cluster["members"]:
            for quote in member["quotes"]:
                assert quote["article_id"] == member["article_id"]
                assert quote["verified"], quote
                text = texts[quote["article_id"]]
                assert text[quote["start"] : quote["end"]] == quote["quote"].strip()
                count += 1
    assert result["grounding"] == {"quotes": count, "verified": count}
    return count


def test_a_story_of_three_articles_is_compared_with_every_quote_verified(stack: Stack) -> None:
    stack.llm.control(requests_log=True, reset_stats=True)
    accepted = submit_story(stack, {"title": "Main Street", "articles": story_articles()})
    assert accepted["status"] == "waiting" and len(accepted["jobs"]) == 3
    story = wait_story(stack, accepted["story_id"])
    assert story["status"] == "succeeded", story
    assert [a["status"] for a in story["articles"]] == ["succeeded"] * 3
    assert [a["source"] for a in story["articles"]] == [source for _, source in STORY_ANGLES]
    result = story["result"]
    assert result["method"] == "llm" and result["model"] == "stand-in-model"
    # three articles, one call each, then one call for the whole story
    assert result["usage"]["llm_calls"] == 1
    assert stack.llm.stats()["completions"] >= 4
    assert any("<claims>" in m["content"] for r in stack.llm.requests() for m in r["messages"])
    assert assert_quotes_verify(stack, result) > 0
    article_ids = [a["article_id"] for a in story["articles"]]
    assert [o["article_id"] for o in result["outlets"]] == article_ids
    clusters = {c["id"]: c for c in result["clusters"]}
    assert sorted(result["shared"] + result["unique"]) == sorted(clusters)
    for cluster_id in result["unique"]:
        assert len(clusters[cluster_id]["article_ids"]) == 1
    # every claim each article's job found is in exactly one cluster
    with stack.client() as client:
        points = sum(
            len(client.get(f"/v1/jobs/{a['job_id']}").json()["result"]["argument_points"])
            for a in story["articles"]
        )
    assert sum(len(c["members"]) for c in clusters.values()) == points
    # coverage: each outlet covers its clusters and its blindspots are the rest
    for coverage in result["coverage"]:
        assert sorted(coverage["covers"] + coverage["blindspots"]) == sorted(clusters)
        for cluster_id in coverage["covers"]:
            assert coverage["article_id"] in clusters[cluster_id]["article_ids"]
    # the synthesis names every outlet it draws on
    for _, source in STORY_ANGLES:
        assert source in result["synthesis"]
    assert result["failed"] == []
    # the caller's stories, newest first; another key sees none of it
    with stack.client() as client:
        page = client.get("/v1/stories", params={"limit": 1}).json()
    assert page["items"][0]["id"] == accepted["story_id"]
    assert page["items"][0]["result"] is None
    other = stack.new_key("stories-other")
    with stack.client(other) as client:
        response = client.get(f"/v1/stories/{accepted['story_id']}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert client.get("/v1/stories").json()["items"] == []


def test_a_failing_article_does_not_stop_the_story(stack: Stack) -> None:
    articles = [*story_articles()[:2], {"text": fixture_text("boilerplate_only.txt")}]
    accepted = submit_story(stack, {"articles": articles})
    story = wait_story(stack, accepted["story_id"])
    assert story["status"] == "succeeded", story
    failed_id = accepted["jobs"][2]["article_id"]
    [failed] = story["result"]["failed"]
    assert failed["article_id"] == failed_id
    assert failed["error"]["code"] == "no_article_text" and failed["error"]["message"]
    assert story["articles"][2]["error"]["code"] == "no_article_text"
    assert "could not be analysed (no_article_text)" in story["result"]["synthesis"]
    assert failed_id not in {c["article_id"] for c in story["result"]["coverage"]}
    assert_quotes_verify(stack, story["result"])


def test_existing_articles_reuse_their_results_and_a_killed_worker_still_ends_the_story(
    stack: Stack,
) -> None:
    first = wait_story(stack, submit_story(stack, {"articles": story_articles()[:2]})["story_id"])
    assert first["status"] == "succeeded"
    # hold every LLM call: the jobs reuse their stored results, so only the comparison waits
    stack.llm.control(hold=True, reset_stats=True)
    body = {"articles": [{"article_id": a["article_id"]} for a in first["articles"]]}
    accepted = submit_story(stack, body)
    with stack.client() as client:

        def comparing_in_llm() -> bool:
            story = client.get(f"/v1/stories/{accepted['story_id']}").json()
            return story["status"] == "comparing" and stack.llm.stats()["in_flight"] == 1

        wait_until(comparing_in_llm, 60, interval=0.2, what="the comparison inside its LLM call")
    assert stack.llm.stats()["completions"] == 0  # the two jobs made no LLM call
    stack.processes["worker"].kill()  # SIGKILL mid-comparison: no cleanup, no ack
    stack.processes["worker"].wait(10)
    stack.llm.control(hold=False)
    stack.start_worker("worker")
    story = wait_story(stack, accepted["story_id"])
    assert story["status"] == "succeeded", story
    assert story["result"]["usage"]["llm_calls"] == 1
    assert [a["article_id"] for a in story["articles"]] == body_ids(body)
    assert_quotes_verify(stack, story["result"])


def body_ids(body: dict[str, Any]) -> list[str]:
    return [a["article_id"] for a in body["articles"]]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"articles": [{"text": "Only one."}]}, 422, "at least 2"),
        (
            {"articles": [{"text": "One."}, {"title": "no text"}]},
            422,
            "exactly one of 'text', 'html' or 'url'",
        ),
        (
            {"articles": [{"text": "One."}, {"text": "  "}]},
            422,
            "articles[1]: The article's 'text' is empty",
        ),
        (
            {"articles": [{"text": "One."}, {"article_id": str(uuid.uuid4())}]},
            422,
            "no article",
        ),
        ({"articles": [{"text": f"Article {i}."} for i in range(11)]}, 413, "the limit is 10"),
        ({"articles": "two"}, 422, "articles"),
    ],
)
def test_bad_stories_are_refused_in_words(
    stack: Stack, body: dict[str, Any], status: int, words: str
) -> None:
    with stack.client() as client:
        before = len(client.get("/v1/stories", params={"limit": 100}).json()["items"])
        response = client.post("/v1/stories", json=body)
        after = len(client.get("/v1/stories", params={"limit": 100}).json()["items"])
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]
    assert after == before  # nothing stored


def test_another_keys_article_cannot_join_a_story(stack: Stack) -> None:
    theirs = stack.submit(key=stack.new_key("stories-owner"), text="The council met on Monday.")
    body = {"articles": [{"text": "One."}, {"article_id": theirs["article_id"]}]}
    with stack.client() as client:
        response = client.post("/v1/stories", json=body)
        assert response.status_code == 422
        assert f"no article {theirs['article_id']} for this API key" in response.json()["detail"]
        assert client.get(f"/v1/stories/{uuid.uuid4()}").status_code == 404


def test_the_cli_compares_files_and_prints_the_story(stack: Stack, tmp_path: Path) -> None:
    files = []
    for article in story_articles():
        path = tmp_path / f"{article['title'].replace(' ', '_')}.txt"
        path.write_text(article["text"])
        files.append(str(path))
    client_env: dict[str, Any] = {"EVENHAND_API_URL": stack.api_url, "EVENHAND_API_KEY": stack.key}
    shown = stack.run_cli("story", *files, "--wait", "--title", "Main Street", **client_env)
    assert "succeeded" in shown.stdout and "Synthesis" in shown.stdout
    assert "✓" in shown.stdout  # verified quotes are marked
    as_json = stack.run_cli("story", *files[:2], "--wait", "--json", **client_env)
    story = json.loads(as_json.stdout)
    assert story["status"] == "succeeded" and len(story["result"]["outlets"]) == 2
    one = stack.run_cli("story", files[0], check=False, **client_env)
    assert one.returncode == 2 and "at least two articles" in one.stderr
    missing = stack.run_cli(
        "story", files[0], str(tmp_path / "nope.txt"), check=False, **client_env
    )
    assert (
        missing.returncode == 2
        and "nope.txt" in missing.stderr
        and "Traceback" not in missing.stderr
    )
