"""A story's comparison survives a Redis that restarts empty (no persistence): it is due while
Redis is down, or it was published and Redis lost it before a worker took it. The database, not a
chord counter in Redis, knows the story is due. Real Redis, database, worker and API processes."""

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from testkit.stack import (
    FakeLLM,
    RedisProcess,
    Stack,
    fresh_database,
    running_stack,
    stop_process,
    wait_until,
)
from tests.e2e.test_reliability import statuses
from tests.e2e.test_stories import assert_quotes_verify, story_articles, submit_story, wait_story

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def story_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("story-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    story_redis: RedisProcess,
    fake_llm: FakeLLM,
) -> Iterator[Stack]:
    """A stack of its own (its own Redis and database), so restarting Redis breaks nothing else."""
    tmp = tmp_path_factory.mktemp(f"story-outage-{request.param}")
    with ExitStack() as contexts:
        if request.param == "postgres":
            server_url = request.getfixturevalue("postgres_server_url")
            database_url = contexts.enter_context(fresh_database(server_url))
        else:
            database_url = f"sqlite:///{tmp / 'stories.db'}"
        yield contexts.enter_context(
            running_stack(
                f"story-outage-{request.param}", database_url, story_redis.url, fake_llm, tmp
            )
        )


@pytest.fixture
def outage(story_stack: Stack, story_redis: RedisProcess) -> Iterator[Stack]:
    yield story_stack
    # a test that failed halfway may leave Redis or the worker stopped: the next starts whole
    if story_redis.process is None:
        story_redis.start()
    if story_stack.processes["worker"].poll() is not None:
        story_stack.start_worker("worker")


def story_status(stack: Stack, story_id: str) -> str:
    with stack.client() as client:
        response = client.get(f"/v1/stories/{story_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def story_row(stack: Stack, story_id: str) -> dict[str, Any]:
    """The story's claim and publication, read straight from the database."""
    engine = sa.create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, attempts, lease_expires_at, published_at FROM story")
            ).all()
    finally:
        engine.dispose()
    # compared as text: SQLite stores the uuid as 32 hex digits, PostgreSQL as a uuid
    [row] = [r for r in rows if str(r.id).replace("-", "") == story_id.replace("-", "")]
    return dict(row._mapping)


def comparison_calls(stack: Stack) -> int:
    """LLM requests that asked for a story's comparison (its prompt lists the claims)."""
    return sum(
        any("<claims>" in message["content"] for message in request["messages"])
        for request in stack.llm.requests()
    )


def queued_task_ids(server: RedisProcess, queue: str) -> list[str]:
    client = redis.Redis.from_url(server.url)
    try:
        return [json.loads(message)["headers"]["id"] for message in client.lrange(queue, 0, -1)]
    finally:
        client.close()


def worker_log(stack: Stack) -> str:
    return (stack.log_dir / "worker.log").read_text(errors="replace")


def test_a_comparison_due_while_redis_is_down_runs_once_redis_is_back_empty(
    outage: Stack, story_redis: RedisProcess
) -> None:
    stack = outage
    stack.llm.control(hold=True, requests_log=True, reset_stats=True)
    accepted = submit_story(stack, {"title": "Main Street", "articles": story_articles()})
    story_id, job_ids = accepted["story_id"], [job["job_id"] for job in accepted["jobs"]]
    wait_until(
        lambda: stack.llm.stats()["in_flight"] == 3,
        30,
        interval=0.2,
        what="the story's three jobs inside their LLM calls",
    )
    failed_publishes = worker_log(stack).count('"story_publish_failed"')
    story_redis.stop()  # it keeps nothing on disk: every message goes with it
    stack.llm.control(hold=False)
    # the jobs end and are stored while the broker is down; the last one moves the story on
    wait_until(
        lambda: statuses(stack, job_ids) == ["succeeded"] * 3,
        60,
        interval=0.2,
        what="the three jobs to succeed while Redis is down",
    )
    wait_until(
        lambda: story_status(stack, story_id) == "comparing",
        30,
        interval=0.2,
        what="the story to wait for its comparison",
    )
    # the comparison could not be published (a chord's callback would be gone with its counter)
    wait_until(
        lambda: worker_log(stack).count('"story_publish_failed"') > failed_publishes,
        30,
        interval=0.2,
        what="the worker's failed attempt to publish the comparison",
    )
    assert story_row(stack, story_id)["published_at"] is None
    assert comparison_calls(stack) == 0
    story_redis.start()  # empty: no task, no marker of the sweeper's
    story = wait_story(stack, story_id)
    assert story["status"] == "succeeded", story
    assert [a["status"] for a in story["articles"]] == ["succeeded"] * 3
    assert story["result"]["usage"]["llm_calls"] == 1
    assert len(story["result"]["outlets"]) == 3 and story["result"]["failed"] == []
    assert_quotes_verify(stack, story["result"])
    assert comparison_calls(stack) == 1  # compared once
    assert story_row(stack, story_id)["attempts"] == 1


def stop_taking_tasks(stack: Stack, server: RedisProcess) -> None:
    """Have the worker stop consuming its queue, as an operator would with Celery's remote
    control; it keeps running, its sweeper too."""
    queue = stack.env["EVENHAND_QUEUE"]
    done = subprocess.run(
        [sys.executable, "-m", "celery", "--app", "worker", "control", "cancel_consumer", queue],
        env=stack.env, capture_output=True, text=True, timeout=60, cwd=stack.log_dir,
    )  # fmt: skip
    assert f"no longer consuming from {queue}" in done.stdout, done.stdout + done.stderr
    # a BRPOP sent before the cancel would still take the next message: wait until none waits
    client = redis.Redis.from_url(server.url)
    try:
        wait_until(
            lambda: not [c for c in client.client_list() if "b" in c["flags"]],
            30,
            interval=0.1,
            what="no Redis client blocked on the queue",
        )
    finally:
        client.close()


def test_a_published_comparison_that_redis_lost_is_published_again(
    outage: Stack, story_redis: RedisProcess
) -> None:
    stack = outage
    queue = stack.env["EVENHAND_QUEUE"]
    stack.llm.control(hold=True, requests_log=True, reset_stats=True)
    accepted = submit_story(stack, {"articles": story_articles()[:2]})
    story_id = accepted["story_id"]
    wait_until(
        lambda: stack.llm.stats()["in_flight"] == 2,
        30,
        interval=0.2,
        what="the story's two jobs inside their LLM calls",
    )
    stop_taking_tasks(stack, story_redis)
    stack.llm.control(hold=False)
    # the last job publishes the comparison as it ends, and no worker takes it
    wait_until(
        lambda: story_id in queued_task_ids(story_redis, queue),
        30,
        interval=0.2,
        what="the comparison's task in the queue",
    )
    assert story_status(stack, story_id) == "comparing"
    row = story_row(stack, story_id)
    assert row["published_at"] is not None and row["lease_expires_at"] is None
    assert row["attempts"] == 0
    story_redis.stop()
    story_redis.start()  # empty: the published comparison is gone with it
    # the running worker's sweeper sees a Redis that lost what it held, and publishes it again
    wait_until(
        lambda: story_id in queued_task_ids(story_redis, queue),
        30,
        interval=0.2,
        what="the comparison published again",
    )
    stop_process(stack.processes["worker"])
    stack.start_worker("worker")  # consuming again
    story = wait_story(stack, story_id)
    assert story["status"] == "succeeded", story
    assert story["result"]["usage"]["llm_calls"] == 1
    assert_quotes_verify(stack, story["result"])
    assert comparison_calls(stack) == 1
    assert story_row(stack, story_id)["attempts"] == 1
