"""POST /v1/batches: many articles at once, one job each, and the batch's progress."""

import pytest

from testkit.fixtures import fixture_text, fresh_text
from testkit.stack import Stack, wait_until

pytestmark = pytest.mark.e2e


def test_batch_makes_one_job_per_article_and_reports_progress(stack: Stack) -> None:
    body = {
        "articles": [
            {"text": fresh_text("news_multiple_sides.txt"), "title": "one"},
            {"html": fixture_text("article_page.html")},
            {"text": fixture_text("boilerplate_only.txt")},
        ]
    }
    with stack.client() as client:
        response = client.post("/v1/batches", json=body)
        assert response.status_code == 202, response.text
        batch = response.json()
        assert response.headers["location"] == f"/v1/batches/{batch['id']}"
        assert batch["total"] == 3 and len({job["job_id"] for job in batch["jobs"]}) == 3

        def finished() -> dict | None:
            progress = client.get(f"/v1/batches/{batch['id']}").json()
            return progress if progress["finished"] else None

        progress = wait_until(finished, 60, interval=0.2, what="the batch to finish")
    assert progress["counts"]["succeeded"] == 2 and progress["counts"]["failed"] == 1
    assert sum(progress["counts"].values()) == 3
    failed = stack.wait_job(progress["jobs"][2]["job_id"])
    assert failed["error"]["code"] == "no_article_text"
    with stack.client(stack.new_key("batch-other")) as other:
        assert other.get(f"/v1/batches/{batch['id']}").status_code == 404


def test_a_bad_article_refuses_the_whole_batch(stack: Stack) -> None:
    key = stack.new_key("batch-atomic")
    with stack.client(key) as client:
        response = client.post(
            "/v1/batches", json={"articles": [{"text": "A fine sentence."}, {"text": "   "}]}
        )
        assert response.status_code == 422
        assert response.json()["detail"].startswith("articles[1]:")
        assert client.get("/v1/jobs").json()["items"] == []  # nothing was stored
        assert client.post("/v1/batches", json={"articles": []}).status_code == 422
        too_many = {"articles": [{"text": f"Sentence {i}."} for i in range(101)]}
        assert client.post("/v1/batches", json=too_many).status_code == 413
        assert (
            client.post(
                "/v1/batches", content=b"x", headers={"Content-Type": "text/plain"}
            ).status_code
            == 415
        )


def test_a_batch_counts_against_the_daily_quota(stack: Stack) -> None:
    key = stack.run_cli("keys", "create", "batch-quota", "--daily-jobs", "2").stdout.splitlines()[
        -1
    ]
    with stack.client(key) as client:
        three = {"articles": [{"text": f"Sentence number {i} of three."} for i in range(3)]}
        assert client.post("/v1/batches", json=three).status_code == 429
        two = {"articles": three["articles"][:2]}
        assert client.post("/v1/batches", json=two).status_code == 202
