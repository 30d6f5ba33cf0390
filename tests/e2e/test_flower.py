"""Flower tells the truth: a job's task has the job's id, shows the job id and its title as its
arguments (never the article), and ends as FAILURE with the job's code when the job fails."""

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evenhand.embedded import free_port, wait_for_port
from testkit.fixtures import fixture_text, fresh_text
from testkit.stack import ROOT, Stack, stop_process, wait_until

pytestmark = pytest.mark.e2e

AUTH = ("watcher", "flower-test-secret")


@pytest.fixture
def flower(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Flower over the stack's Redis, started before the jobs so it sees their events."""
    port = free_port()
    log = (tmp_path_factory.mktemp("flower") / "flower.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "worker", "flower", f"--port={port}",
         "--address=127.0.0.1"],
        env={**stack.env, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_port(port, 30), "Flower did not start"
        # its event receiver is connected once it has heard the stack's worker
        wait_until(lambda: _get(url, "/api/workers?refresh=1"), 60, what="Flower to see a worker")
        yield url
    finally:
        stop_process(process)


def _get(url: str, path: str) -> Any:
    response = httpx.get(url + path, auth=AUTH, timeout=30)
    response.raise_for_status()
    return response.json()


def test_flower_shows_each_job_under_its_id_with_its_true_outcome(
    stack: Stack, flower: str
) -> None:
    key = stack.new_key("flower")
    ok = stack.submit(key, text=fresh_text("news_multiple_sides.txt"), title="Harbour toll vote")
    bad = stack.submit(key, text=fixture_text("boilerplate_only.txt"), title="Only boilerplate")
    assert stack.wait_job(ok["job_id"], key)["status"] == "succeeded"
    failed = stack.wait_job(bad["job_id"], key)
    assert failed["error"]["code"] == "no_article_text"

    def both_ended() -> dict[str, Any] | None:
        tasks = _get(flower, "/api/tasks")
        ended = {"SUCCESS", "FAILURE"}
        if all(tasks.get(job, {}).get("state") in ended for job in (ok["job_id"], bad["job_id"])):
            return tasks
        return None

    tasks = wait_until(both_ended, 60, what="Flower to see both tasks end")
    success, failure = tasks[ok["job_id"]], tasks[bad["job_id"]]
    assert success["state"] == "SUCCESS"
    assert failure["state"] == "FAILURE"
    assert "no_article_text" in failure["exception"]
    assert failed["error"]["message"][:40] in failure["exception"]
    # the job id and a short label, never the article's text
    assert ok["job_id"] in success["args"] and "Harbour toll vote" in success["args"]
    article_line = fixture_text("news_multiple_sides.txt").split(".")[0]
    assert article_line not in success["args"] + str(success.get("kwargs"))


def test_a_retried_job_runs_again_under_the_same_task_id(stack: Stack, flower: str) -> None:
    key = stack.new_key("flower-retry")
    bad = stack.submit(key, text=fixture_text("boilerplate_only.txt"), title="Retry me")
    job_id = bad["job_id"]
    assert stack.wait_job(job_id, key)["status"] == "failed"
    wait_until(
        lambda: _get(flower, "/api/tasks").get(job_id, {}).get("state") == "FAILURE",
        60,
        what="the first run's FAILURE in Flower",
    )
    first_received = _get(flower, "/api/tasks")[job_id]["received"]
    with stack.client(key) as client:
        assert client.post(f"/v1/jobs/{job_id}/retry").status_code == 202
    assert stack.wait_job(job_id, key)["status"] == "failed"

    def second_run_ended() -> bool:
        task = _get(flower, "/api/tasks").get(job_id, {})
        return task.get("state") == "FAILURE" and task.get("received", 0) > first_received

    wait_until(second_run_ended, 60, what="the second run's FAILURE in Flower")
