"""The API's cache of job answers: what it may keep, and when it must let go."""

import uuid

from api.job_cache import JobAnswer, JobCache
from kernel.models import JobStatus

RUNNING = JobAnswer(owner_id=1, status=JobStatus.running, body=b'{"status":"running"}')


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
    succeeded = JobAnswer(owner_id=1, status=JobStatus.succeeded, body=b"{}")
    cache.fill(job_id, newer, succeeded)
    assert cache.get(job_id) == succeeded
    cache.forget(job_id)
    assert cache.get(job_id) is None


def test_ttl_zero_turns_the_cache_off() -> None:
    cache, job_id = JobCache(ttl=0), uuid.uuid4()
    cache.start_serving()
    cache.fill(job_id, cache.reserve(job_id), RUNNING)
    assert cache.get(job_id) is None


def test_a_failed_read_lets_go_of_its_reservation() -> None:
    cache, job_id = JobCache(ttl=60), uuid.uuid4()
    cache.start_serving()
    failed = cache.reserve(job_id)
    later = cache.reserve(job_id)
    cache.release(job_id, failed)  # not its reservation any more: the later read's stays
    cache.fill(job_id, later, RUNNING)
    assert cache.get(job_id) == RUNNING
    cache.forget(job_id)
    cache.release(job_id, cache.reserve(job_id))
    assert len(cache._entries or {}) == 0


def test_the_cache_is_bounded_by_the_size_of_its_answers() -> None:
    cache = JobCache(ttl=60, max_bytes=1000)
    cache.start_serving()
    ids = [uuid.uuid4() for _ in range(5)]
    for job_id in ids:
        answer = JobAnswer(owner_id=1, status=JobStatus.succeeded, body=b"x" * 300)
        cache.fill(job_id, cache.reserve(job_id), answer)
    kept = [job_id for job_id in ids if cache.get(job_id) is not None]
    assert kept == ids[-3:]  # 3 answers of 300 bytes fit in 1,000; the oldest went first
