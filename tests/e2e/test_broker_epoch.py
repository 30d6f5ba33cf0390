"""The sweeper tells a Redis that lost its messages from one that is merely new to it: only the
jobs published before Redis started are published again, and only then does it warn."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlmodel import Session

from kernel.config import get_settings
from kernel.db import get_engine
from kernel.migrate import upgrade_to_head
from kernel.models import ApiKey, Article, Job, JobStatus, utcnow
from testkit.stack import ROOT, RedisProcess, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


SWEEP = """
import json, structlog
from kernel.celery_app import celery_app
from kernel.config import get_settings
from worker.sweeper import Sweeper
with structlog.testing.capture_logs() as logs:
    Sweeper(get_settings(), celery_app).sweep_once()
print(json.dumps([{"event": e["event"], "requeued": e.get("requeued")} for e in logs]))
"""


@dataclass
class Sweeps:
    """Runs the sweeper's round in a process of its own, against this test's Redis and database
    (as a worker (re)starting would)."""

    env: dict[str, str]

    def once(self) -> list[dict[str, object]]:
        done = subprocess.run(
            [sys.executable, "-c", SWEEP], env=self.env, capture_output=True, text=True,
            timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def sweeps(
    own_redis: RedisProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sweeps]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'epoch.db'}",
        "REDIS_URL": own_redis.url,
        "EVENHAND_QUEUE": "epoch-test",
        # a year: these tests are about the broker's epoch, not about stale publications
        "EVENHAND_REPUBLISH_AFTER": str(365 * 86400),
    }
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    get_settings.cache_clear()
    get_engine.cache_clear()
    upgrade_to_head()
    yield Sweeps(env)
    get_settings.cache_clear()
    get_engine.cache_clear()


def redis_up_for_a_while(server: RedisProcess) -> None:
    """Long enough that Redis's whole-second uptime places its start before what comes next."""
    client = redis.Redis.from_url(server.url)
    wait_until(lambda: client.info("server")["uptime_in_seconds"] >= 3, 10, what="Redis uptime")
    client.close()


def published_job() -> uuid.UUID:
    """A queued job submitted a minute ago (past the API's own publishing grace) whose task was
    published just now."""
    with Session(get_engine()) as session:
        key = ApiKey(name="k", prefix="eh_", key_hash=uuid.uuid4().hex)
        session.add(key)
        session.flush()
        assert key.id is not None
        article = Article(owner_id=key.id, input_kind="text", raw_text="A text.")
        job = Job(
            article_id=article.id,
            owner_id=key.id,
            status=JobStatus.queued,
            created_at=utcnow() - timedelta(minutes=1),
            published_at=utcnow() - timedelta(milliseconds=1),
        )
        session.add_all([article, job])
        session.commit()
        return job.id


def published_at(job_id: uuid.UUID) -> datetime | None:
    with Session(get_engine()) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.published_at


def test_a_new_redis_holding_the_messages_is_left_alone(
    sweeps: Sweeps, own_redis: RedisProcess
) -> None:
    redis_up_for_a_while(own_redis)
    job_id = published_job()  # published to this Redis: its message is waiting there
    first = published_at(job_id)
    logs = sweeps.once() + sweeps.once()  # the first looks at this Redis, as after a (re)start
    assert published_at(job_id) == first  # not published a second time
    assert not [e for e in logs if e["event"] == "broker_data_lost"]


def test_a_redis_that_lost_its_messages_gets_them_again(
    sweeps: Sweeps, own_redis: RedisProcess
) -> None:
    sweeps.once()  # the sweepers know this Redis
    job_id = published_job()
    first = published_at(job_id)
    own_redis.stop()  # it keeps nothing on disk: the job's message is gone
    own_redis.start()
    lost = [e for e in sweeps.once() if e["event"] == "broker_data_lost"]
    assert lost == [{"event": "broker_data_lost", "requeued": 1}]
    again = published_at(job_id)  # published again by the same round
    assert again is not None and first is not None and again > first
    assert redis.Redis.from_url(own_redis.url).llen("epoch-test") == 1  # its task is back
