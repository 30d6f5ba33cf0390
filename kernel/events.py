"""Job status announcements on a Redis channel, so that a waiting long-poll or event stream
answers as soon as a job changes instead of at its next database read.

The database stays the single source of truth: an announcement only says "read job X again".
A lost one (Redis away, a subscriber reconnecting) costs a waiter latency, never correctness,
because every waiter still reads the database at a slow fallback interval; a plain poll may
see the job's previous state from the API's cache for up to EVENHAND_JOB_CACHE_SECONDS
(api/job_cache.py).
"""

import uuid
from functools import lru_cache

import redis
import structlog

from kernel.config import Settings

log = structlog.get_logger(__name__)


def job_events_channel(queue: str) -> str:
    # per queue, like the broker's own keys: deployments sharing one Redis do not wake each other
    return f"evenhand:{queue}:job-events"


@lru_cache
def _client(redis_url: str) -> redis.Redis:
    # one connection pool per process and URL; short timeouts: an announcement must never hold
    # up the job that sends it
    return redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)


def announce_job(settings: Settings, job_id: uuid.UUID) -> None:
    """Tell the API processes that job `job_id` changed. Call after the change is committed."""
    try:
        _client(settings.broker_url).publish(job_events_channel(settings.queue), str(job_id))
    except redis.RedisError as exc:
        log.warning("job_announce_failed", error=type(exc).__name__)
