"""The API's cache of job answers: what it may keep, and when it must let go."""

import uuid

from api.job_cache import CachedJob, JobCache
from evenhand.models import JobStatus

RUNNING = CachedJob(owner_id=1, status=JobStatus.running, body=b'{"status":"running"}')


def test_a_read_is_kept_only_while_the_watch_serves() -> None:
    cache, job_id = JobCache(ttl=60), uuid.uuid4()
    cache.fill(job_id, cache.reserve(job_id), RUNNING)
    assert cache.get(job_id) is None  # not subscribed yet: announcements could be missed
    cache.start_serving()
    cache.fill(job_id, cache.reserve(job_id), RUNNING)
    assert cache.get(job_id) == RUNNING
    cache.stop_serving()  # the subscription dropped: what it held may be stale
    assert cache.get(job_id) is None
    cache.start_serving()
    assert cache.get(job_id) is None


def test_a_change_during_a_read_keeps_that_read_out() -> None:
    cache, job_id = JobCache(ttl=60), uuid.uuid4()
    cache.start_serving()
    reservation = cache.reserve(job_id)
    cache.forget(job_id)  # announced while the read was on its way
    cache.fill(job_id, reservation, RUNNING)
    assert cache.get(job_id) is None
    stale = cache.reserve(job_id)
    newer = cache.reserve(job_id)  # a second read started later
    cache.fill(job_id, stale, RUNNING)
    assert cache.get(job_id) is None
    succeeded = CachedJob(owner_id=1, status=JobStatus.succeeded, body=b"{}")
    cache.fill(job_id, newer, succeeded)
    assert cache.get(job_id) == succeeded
    cache.forget(job_id)
    assert cache.get(job_id) is None


def test_ttl_zero_turns_the_cache_off() -> None:
    cache, job_id = JobCache(ttl=0), uuid.uuid4()
    cache.start_serving()
    cache.fill(job_id, cache.reserve(job_id), RUNNING)
    assert cache.get(job_id) is None
