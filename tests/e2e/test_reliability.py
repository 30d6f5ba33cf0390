"""No job lost, none turned into two results: crashed workers, a Redis outage, LLM fault storms,
cancel and retry, graceful shutdown. Real Redis, PostgreSQL, worker processes and API."""

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from evenhand.embedded import free_port
from testkit.fixtures import fresh_text
from testkit.stack import (
    FakeLLM,
    RedisProcess,
    Stack,
    fresh_database,
    metric,
    results_per_job,
    running_stack,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path_factory.mktemp("chaos-redis"))
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def chaos(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server_url: str,
    chaos_redis: RedisProcess,
    fake_llm: FakeLLM,
) -> Iterator[Stack]:
    """A stack of its own (its own Redis and database), so breaking it breaks nothing else."""
    with (
        fresh_database(postgres_server_url) as database_url,
        running_stack(
            "chaos", database_url, chaos_redis.url, fake_llm, tmp_path_factory.mktemp("chaos")
        ) as stack,
    ):
        stack.env["EVENHAND_LLM_TIMEOUT"] = "2"
        stack.env["EVENHAND_LLM_RETRIES"] = "8"
        stop_process(stack.processes["worker"])
        stack.start_worker("worker")
        yield stack


def submit_many(stack: Stack, count: int) -> list[str]:
    return [
        stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"] for _ in range(count)
    ]


def statuses(stack: Stack, job_ids: list[str]) -> list[str]:
    with stack.client() as client:
        return [client.get(f"/v1/jobs/{job_id}").json()["status"] for job_id in job_ids]


def assert_all_succeeded_once(stack: Stack, job_ids: list[str], timeout: float = 90) -> list[dict]:
    jobs = [stack.wait_job(job_id, timeout=timeout) for job_id in job_ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * len(job_ids), [
        (job["status"], job.get("error")) for job in jobs
    ]
    assert set(results_per_job(stack.env["DATABASE_URL"], job_ids).values()) == {1}
    return jobs


def test_sigkill_mid_job_loses_nothing_and_makes_one_result(chaos: Stack) -> None:
    chaos.llm.control(latency=3)
    job_ids = submit_many(chaos, 6)
    wait_until(
        lambda: statuses(chaos, job_ids).count("running") == 6,
        30,
        interval=0.2,
        what="6 running jobs",
    )
    chaos.processes["worker"].kill()  # SIGKILL: no cleanup, no ack, no lease release
    chaos.processes["worker"].wait(10)
    chaos.llm.control(latency=0)
    killed_at = time.monotonic()
    chaos.start_worker("worker")
    jobs = assert_all_succeeded_once(chaos, job_ids)
    assert all(job["attempts"] == 2 for job in jobs)
    # recovered by the sweeper from expired leases (3 s here), not Redis's visibility timeout
    recovered_in = time.monotonic() - killed_at
    print(f"\nSIGKILL recovery: 6 jobs succeeded {recovered_in:.1f} s after the kill")
    assert recovered_in < 60


def test_redis_outage_under_load_loses_nothing(chaos: Stack, chaos_redis: RedisProcess) -> None:
    chaos.llm.control(latency=0.5)
    before = submit_many(chaos, 5)
    chaos_redis.stop()
    during = submit_many(chaos, 5)  # the API still accepts: the jobs are safe in the database
    assert set(statuses(chaos, during)) == {"queued"}
    time.sleep(2)
    chaos_redis.start()
    assert_all_succeeded_once(chaos, before + during)
    # the API's job watch subscribed again by itself
    wait_until(
        lambda: (
            metric(httpx.get(f"{chaos.api_url}/metrics").text, "evenhand_job_watch_subscribed") == 1
        ),
        30,
        what="the job watch to resubscribe",
    )
    # the worker consumes again by itself after the broker came back
    after = submit_many(chaos, 2)
    assert_all_succeeded_once(chaos, after, timeout=30)


def submit_during(stack: Stack, count: int, outage: Callable[[], None]) -> list[httpx.Response]:
    """`count` submits from 8 threads (so the API commits them in groups), with `outage` run
    in the middle of them."""
    body = {"text": fresh_text("news_multiple_sides.txt")}

    def post(index: int) -> httpx.Response:
        if index == count // 3:
            outage()
        with stack.client() as client:
            return client.post("/v1/articles", json={**body, "title": f"group {index}"})

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, range(count)))


def accepted_ids(answers: list[httpx.Response]) -> list[str]:
    for answer in answers:
        assert answer.status_code in (202, 503), answer.text
        if answer.status_code == 503:
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert "nothing was stored" in answer.json()["detail"]
    return [a.json()["job_id"] for a in answers if a.status_code == 202]


def test_broker_outage_in_the_middle_of_groups_loses_no_accepted_article(
    chaos: Stack, chaos_redis: RedisProcess
) -> None:
    chaos.llm.control(latency=0)
    answers = submit_during(chaos, 60, chaos_redis.stop)
    accepted = accepted_ids(answers)
    assert len(accepted) == 60  # the database held every one: all accepted, published later
    chaos_redis.start()
    assert_all_succeeded_once(chaos, accepted, timeout=120)


class DatabaseSwitch:
    """Takes the stack's PostgreSQL database away (no new connections, every open one ended) and
    brings it back."""

    def __init__(self, stack: Stack, server_url: str) -> None:
        self.name = make_url(stack.env["DATABASE_URL"]).database
        self.admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")

    def away(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(
                sa.text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
            )
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": self.name},
            )

    def back(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true'))
        self.admin.dispose()


def test_database_outage_in_the_middle_of_groups_loses_no_accepted_article(
    chaos: Stack, postgres_server_url: str
) -> None:
    chaos.llm.control(latency=0)
    database = DatabaseSwitch(chaos, postgres_server_url)
    try:
        answers = submit_during(chaos, 60, database.away)
    finally:
        database.back()
    accepted = accepted_ids(answers)
    assert 0 < len(accepted) < 60, [a.status_code for a in answers]
    # every 202 was committed: each job is there and runs once the worker reconnects
    assert_all_succeeded_once(chaos, accepted, timeout=120)


def test_jobs_a_worker_takes_while_the_database_is_away_run_once_it_is_back(
    chaos: Stack, postgres_server_url: str
) -> None:
    chaos.llm.control(latency=0)
    stop_process(chaos.processes["worker"])
    job_ids = submit_many(chaos, 3)  # stored and published; nobody takes them yet
    database = DatabaseSwitch(chaos, postgres_server_url)
    log = chaos.log_dir / "worker.log"
    try:
        database.away()
        chaos.start_worker("worker")  # takes the tasks, cannot claim their jobs
        wait_until(
            lambda: log.read_text().count('"database_away_retry"') >= 3,
            60,
            what="the worker to retry the tasks it could not run",
        )
    finally:
        database.back()
    # within the test's timeout, far below the sweeper's republish (EVENHAND_REPUBLISH_AFTER)
    assert_all_succeeded_once(chaos, job_ids, timeout=90)


def test_llm_fault_storm_every_job_succeeds(chaos: Stack) -> None:
    chaos.llm.control(
        faults=[
            {"kind": "429", "rate": 0.1, "retry_after": 0},
            {"kind": "500", "rate": 0.1},
            {"kind": "malformed", "rate": 0.1},
            {"kind": "timeout", "rate": 0.1, "timeout_seconds": 4},
        ],
        reset_stats=True,
    )
    job_ids = submit_many(chaos, 16)
    assert_all_succeeded_once(chaos, job_ids, timeout=180)
    stats = chaos.llm.stats()
    faults = {kind: stats["faults"][kind] for kind in ("429", "500", "malformed", "timeout")}
    print(f"\nfault storm: 16 jobs succeeded; {stats['requests']} requests, faults {faults}")
    assert sum(faults.values()) > 0
    assert "llm_retry" in (chaos.log_dir / "worker.log").read_text()


def test_quota_errors_fail_at_once(chaos: Stack) -> None:
    chaos.llm.control(faults=[{"kind": "quota", "rate": 1.0}], reset_stats=True)
    job = chaos.wait_job(submit_many(chaos, 1)[0], timeout=15)
    assert job["status"] == "failed" and job["error"]["code"] == "llm_quota_exceeded"
    assert chaos.llm.stats()["requests"] == 1  # not retried


def test_sigterm_lets_running_jobs_finish(chaos: Stack) -> None:
    chaos.llm.control(latency=2)
    job_ids = submit_many(chaos, 3)
    wait_until(
        lambda: statuses(chaos, job_ids).count("running") == 3,
        30,
        interval=0.2,
        what="3 running jobs",
    )
    worker = chaos.processes["worker"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    jobs = assert_all_succeeded_once(chaos, job_ids, timeout=10)
    assert all(job["attempts"] == 1 for job in jobs)  # finished by the worker that was stopping
    chaos.start_worker("worker")


def test_database_down_answers_503(tmp_path: Path, stack: Stack) -> None:
    port = free_port()
    env = {**stack.env, "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"}
    api = subprocess.Popen(
        [sys.executable, "-m", "evenhand.cli", "api", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _up(f"http://127.0.0.1:{port}/healthz"), 30, what="the API")
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/articles",
            json={"text": "A sentence."},
            headers={"Authorization": "Bearer eh_anything"},
            timeout=30,
        )
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "database" in response.json()["detail"]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 503
    finally:
        stop_process(api)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- cancel and retry (the main stacks, SQLite and PostgreSQL) -------------------------------------


def test_cancel_and_retry(stack: Stack) -> None:
    stack.llm.control(latency=2)
    job_id = stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"]
    with stack.client() as client:
        canceled = client.delete(f"/v1/jobs/{job_id}")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 409
        time.sleep(3)  # the worker finishes its LLM call, and must not store a result
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "canceled" and job["result"] is None
        assert results_per_job(stack.env["DATABASE_URL"], [job_id]) == {job_id: 0}
        with stack.client(stack.new_key("cancel-other")) as other:
            assert other.delete(f"/v1/jobs/{job_id}").status_code == 404
            assert other.post(f"/v1/jobs/{job_id}/retry").status_code == 404
        stack.llm.control(latency=0)
        retried = client.post(f"/v1/jobs/{job_id}/retry")
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded"
    with stack.client() as client:
        for response in (
            client.delete(f"/v1/jobs/{job_id}"),
            client.post(f"/v1/jobs/{job_id}/retry"),
        ):
            assert response.status_code == 409
            assert "succeeded" in response.json()["detail"]
    assert results_per_job(stack.env["DATABASE_URL"], [job_id]) == {job_id: 1}


def test_failed_job_can_be_retried(stack: Stack) -> None:
    stack.llm.control(faults=[{"kind": "auth", "count": 1}])
    job_id = stack.submit(text=fresh_text("news_multiple_sides.txt"))["job_id"]
    assert stack.wait_job(job_id)["error"]["code"] == "llm_auth_failed"
    with stack.client() as client:
        assert client.post(f"/v1/jobs/{job_id}/retry").status_code == 202
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded" and job["error"] is None
