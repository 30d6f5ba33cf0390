"""Services, machine facts and an evenhand stack with production settings for the benchmarks."""

from __future__ import annotations

import os
import platform
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

from evenhand.embedded import free_port
from testkit.fixtures.essay import make_essay
from testkit.stack import (
    ROOT,
    FakeLLM,
    Stack,
    fake_llm_service,
    fresh_database,
    postgres_server,
    redis_service,
    stop_process,
    wait_until,
)

LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def article_text(chars: int = 5000, tag: str | None = None) -> str:
    """A `chars`-long opinion essay, unique per `tag` (so no job reuses another's stored result)."""
    tag = tag or uuid.uuid4().hex
    tail = f"\n\nEditor's note {tag}: this column was filed for the reader survey."
    body = make_essay(min_chars=chars + 500)
    cut = body[: chars - len(tail)]
    cut = cut[: cut.rfind(".") + 1] or cut
    text = cut + tail
    return text


@contextmanager
def services(tmp: Path) -> Iterator[tuple[str, str]]:
    """(postgres server URL, redis URL): the configured or local ones, else embedded ones."""
    with (
        postgres_server(tmp, local=LOCAL_PG) as pg,
        redis_service(tmp, local=LOCAL_REDIS) as redis_url,
    ):
        yield pg, redis_url


class RssSampler:
    """Samples the RSS (children included) of named processes every `interval` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.procs: dict[str, psutil.Process] = {}
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        self.procs[name] = psutil.Process(pid)
        self.samples.setdefault(name, [])

    def unwatch(self, name: str) -> None:
        self.procs.pop(name, None)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in list(self.procs.items()):
                mb = rss_mb(proc)
                if mb is not None:
                    self.samples[name].append((time.time(), mb))


def rss_mb(proc: psutil.Process) -> float | None:
    try:
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 2**20
    except psutil.Error:
        return None


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in proc.children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


@dataclass
class Bench:
    """One evenhand stack (API + fresh PostgreSQL database + own queue) with production defaults."""

    stack: Stack
    pg_server: str
    database_url: str
    engine: sa.Engine
    llm: FakeLLM

    def sibling(
        self, name: str, database_url: str | None = None, **settings: str
    ) -> AbstractContextManager[Bench]:
        """Another stack like this one (same server, Redis and LLM) on a fresh database of its own
        (or on `database_url`, a SQLite file say), with these environment settings on top."""
        redis_url = self.stack.env["REDIS_URL"]
        tmp = self.stack.log_dir.parent
        return bench_stack(
            name, self.pg_server, redis_url, tmp, self.llm, database_url=database_url, **settings
        )

    def start_worker(
        self, name: str, *extra: str, timeout: float = 60, **env: str
    ) -> psutil.Process:
        """`evenhand worker` with these arguments and environment settings, once it is ready."""
        log = self.stack.log_dir / f"{name}.log"
        process = self.stack.start_worker(name, *extra, **env)
        wait_until(
            lambda: process.poll() is not None or (log.exists() and b" ready" in log.read_bytes()),
            timeout,
            what=f"worker {name}",
        )
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited: {log.read_text()[-2000:]}")
        return psutil.Process(process.pid)

    def stop_worker(self, name: str, timeout: float = 30) -> None:
        process = self.stack.processes.pop(name, None)
        if process is not None:
            stop_process(process, timeout=timeout)

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(
            base_url=self.stack.api_url,
            headers={"Authorization": f"Bearer {self.stack.key}"},
            timeout=timeout,
        )

    def finished(self, job_ids: list[str]) -> tuple[int, int, float | None]:
        """(succeeded, finished, latest finished_at as a UNIX time) of these jobs."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
                    " count(*) FILTER (WHERE status IN ('succeeded','failed','canceled')),"
                    " extract(epoch FROM max(finished_at))"
                    " FROM job WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": job_ids},
            ).one()
        return int(row[0]), int(row[1]), (float(row[2]) if row[2] is not None else None)


def stack_env(database_url: str, redis_url: str, llm: FakeLLM, name: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": f"{llm.url}/v1",
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "EVENHAND_PROVIDER": "openai",
        "EVENHAND_MODEL": "stand-in-model",
        "EVENHAND_QUEUE": f"evenhand-bench-{name}-{uuid.uuid4().hex[:8]}",
        # the limits would stop a load test long before the server does
        "EVENHAND_RATE_LIMIT": "100000000/minute",
        "EVENHAND_DAILY_JOBS": "1000000000",
        "EVENHAND_DAILY_TOKENS": "1000000000000",
        "EVENHAND_LOG_JSON": "true",
        "EVENHAND_WORKER_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def bench_stack(
    name: str,
    pg_server: str,
    redis_url: str,
    tmp: Path,
    llm: FakeLLM | None = None,
    database_url: str | None = None,
    **settings: str,
) -> Iterator[Bench]:
    """API (started) + fake LLM (a new one unless given) + a fresh PostgreSQL database (unless
    `database_url` names another); workers are started by each figure. A fresh database is
    dropped at the end, also on failure."""
    with ExitStack() as resources:
        if database_url is None:
            database_url = resources.enter_context(fresh_database(pg_server))
        if llm is None:
            llm = resources.enter_context(fake_llm_service(tmp))
        log_dir = tmp / f"stack-{name}"
        log_dir.mkdir()
        stack = Stack(
            name=name,
            env={**stack_env(database_url, redis_url, llm, name), **settings},
            api_url=f"http://127.0.0.1:{free_port()}",
            key="",
            llm=llm,
            log_dir=log_dir,
        )
        engine = sa.create_engine(database_url, pool_size=2)
        try:
            stack.run_cli("migrate")
            stack.key = stack.new_key("bench")
            stack.start_api()
            yield Bench(
                stack=stack, pg_server=pg_server, database_url=database_url, engine=engine, llm=llm
            )
        finally:
            stack.stop()
            engine.dispose()
