"""The API's subscription to job announcements: it serves the job cache only while Redis is
really there, and gives up on a connection that went silent."""

import asyncio
import time
import uuid

import redis.asyncio
from prometheus_client import CollectorRegistry

from api.job_cache import JobAnswer, JobCache
from api.watch import JobWatch
from kernel.events import job_events_channel
from kernel.models import JobStatus

PING_SECONDS = 0.2
QUEUED = JobAnswer(owner_id=1, status=JobStatus.queued, body=b'{"status":"queued"}')


async def _until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `predicate()` held; fails after `timeout`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class StallingProxy:
    """A TCP proxy in front of the real Redis that can go silent: after `stall()` it swallows
    every byte both ways while keeping the connections open, as one behind a dropped NAT entry
    looks."""

    def __init__(self, redis_url: str) -> None:
        address = redis.asyncio.Redis.from_url(redis_url).connection_pool.connection_kwargs
        self.upstream = (address.get("host", "127.0.0.1"), address.get("port", 6379))
        self.db = address.get("db", 0)
        self.stalled = False
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/{self.db}"

    def stall(self) -> None:
        self.stalled = True

    def close(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for stream in (writer, up_writer):
            stream.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if not self.stalled:
                sink.write(data)
                await sink.drain()


def test_a_quiet_healthy_subscription_stays_and_serves(redis_url: str) -> None:
    async def scenario() -> None:
        cache = JobCache(ttl=60)
        watch = JobWatch(
            redis_url, f"q-{uuid.uuid4().hex}", CollectorRegistry(), cache, PING_SECONDS
        )
        watch.start()
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            await asyncio.sleep(5 * PING_SECONDS)  # no announcements: only PINGs and PONGs
            assert watch.subscribed and cache.get(job_id) == QUEUED
        finally:
            await watch.stop()

    asyncio.run(scenario())


def test_an_announcement_drops_the_cached_answer(redis_url: str) -> None:
    async def scenario() -> None:
        cache, queue = JobCache(ttl=60), f"q-{uuid.uuid4().hex}"
        watch = JobWatch(redis_url, queue, CollectorRegistry(), cache, PING_SECONDS)
        watch.start()
        publisher = redis.asyncio.Redis.from_url(redis_url)
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            assert cache.get(job_id) == QUEUED
            await publisher.publish(job_events_channel(queue), str(job_id))
            await _until(lambda: cache.get(job_id) is None, 5)
        finally:
            await publisher.aclose()
            await watch.stop()

    asyncio.run(scenario())


def test_a_silent_connection_ends_the_subscription_and_the_cache(redis_url: str) -> None:
    async def scenario() -> None:
        proxy = StallingProxy(redis_url)
        cache = JobCache(ttl=60)
        watch = JobWatch(await proxy.start(), "q", CollectorRegistry(), cache, PING_SECONDS)
        watch.start()
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            assert cache.get(job_id) == QUEUED
            proxy.stall()
            # a PING after PING_SECONDS of quiet, given up PING_SECONDS later without a PONG
            assert await _until(lambda: not watch.subscribed, 10) < 4 * PING_SECONDS
            assert cache.get(job_id) is None
        finally:
            await watch.stop()
            proxy.close()

    asyncio.run(scenario())
