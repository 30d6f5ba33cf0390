"""Answers to `GET /v1/jobs/{id}`, kept per API process while the job announcements say they are
current, so that a client polling a job costs no database read until the job changes.

Every change to what a job's answer shows (claimed, finished, canceled, retried, reclaimed) is
announced (`kernel.events`), and the job watch drops the job's entry when the announcement
arrives. The cache only serves while the watch is subscribed: when the subscription drops, the
cache empties and stays off until it is back, because announcements made meanwhile are lost.
An announcement lost otherwise (a worker that could not reach Redis, or died between its commit
and its announcement) leaves an answer stale for at most the entry's TTL
(EVENHAND_JOB_CACHE_SECONDS).

A read that misses reserves the job's entry before going to the database and fills it only if
the reservation is still there afterwards: an announcement that arrives during the read drops
the reservation, so an answer read before a change is never stored after it.
"""

import threading
import uuid
from dataclasses import dataclass

from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Counter

from kernel.models import JobStatus


@dataclass(frozen=True, slots=True)
class JobAnswer:
    owner_id: int
    status: JobStatus
    body: bytes  # the job as JSON, exactly as the route answers it


class _Reservation:
    __slots__ = ()


class JobCache:
    """Per API process. Used from the event loop and from the thread pool (cancel and retry
    drop their job's entry as soon as they commit), hence the lock."""

    def __init__(
        self, ttl: float, registry: CollectorRegistry | None = None, max_bytes: int = 64 << 20
    ) -> None:
        # bounded by the answers' size: a succeeded job's answer carries its whole result
        self._entries: TTLCache[uuid.UUID, JobAnswer | _Reservation] | None = (
            TTLCache(max_bytes, ttl, getsizeof=_size) if ttl > 0 else None
        )
        self._lock = threading.Lock()
        self._serving = False
        lookups = Counter(
            "evenhand_job_cache_lookups",
            "Reads of a job by GET /v1/jobs/{id} (and the first read of an event stream), by "
            "whether this API process's cache answered them",
            ["result"],
            registry=registry,
        )
        self._hits, self._misses = lookups.labels("hit"), lookups.labels("miss")

    def get(self, job_id: uuid.UUID) -> JobAnswer | None:
        if self._entries is None:
            self._misses.inc()
            return None
        with self._lock:
            entry = self._entries.get(job_id) if self._serving else None
        if isinstance(entry, JobAnswer):
            self._hits.inc()
            return entry
        self._misses.inc()
        return None

    def reserve(self, job_id: uuid.UUID) -> _Reservation | None:
        """Call before reading the job from the database; pass the result to `fill`."""
        if self._entries is None:
            return None
        reservation = _Reservation()
        with self._lock:
            if not self._serving:
                return None
            self._entries[job_id] = reservation
        return reservation

    def fill(self, job_id: uuid.UUID, reservation: _Reservation | None, job: JobAnswer) -> None:
        """Store the answer read after `reserve`, unless the job changed since."""
        if self._entries is None or reservation is None:
            return
        with self._lock:
            if self._entries.get(job_id) is reservation:
                self._entries[job_id] = job

    def release(self, job_id: uuid.UUID, reservation: _Reservation | None) -> None:
        """The read after `reserve` failed (no such job, the database away): let go."""
        if self._entries is None or reservation is None:
            return
        with self._lock:
            if self._entries.get(job_id) is reservation:
                del self._entries[job_id]

    def forget(self, job_id: uuid.UUID) -> None:
        """The job changed: its next read goes to the database."""
        if self._entries is None:
            return
        with self._lock:
            self._entries.pop(job_id, None)

    def start_serving(self) -> None:
        """The watch subscribed: from now on every change is announced to it."""
        if self._entries is None:
            return
        with self._lock:
            self._entries.clear()
            self._serving = True

    def stop_serving(self) -> None:
        """The watch lost its subscription: announcements may be missed from now on."""
        if self._entries is None:
            return
        with self._lock:
            self._serving = False
            self._entries.clear()


def _size(entry: JobAnswer | _Reservation) -> int:
    return len(entry.body) if isinstance(entry, JobAnswer) else 1
