"""The API's subscription to job announcements: it serves the job cache only while Redis is
really there, and gives up on a connection that went silent."""

import asyncio
import time
import uuid

import redis.asyncio
from prometheus_client import CollectorRegistry

from api.job_cache import JobAnswer, JobCache
from api.watch import JobWatch
from evenhand.events import job_events_channel
from evenhand.models import JobStatus

PING_SECONDS = 0.2
QUEUED = JobAnswer(owner_id=1, status=JobStatus.queued, body=b'{"status":"queued"}')


async def _until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `predicate()` held; fails after `timeout`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _read_command(reader: asyncio.StreamReader) -> list[bytes]:
    count = int((await reader.readline())[1:])
    parts = []
    for _ in range(count):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


async def _silent_after_subscribe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):  # type: ignore[no-untyped-def]
    """A Redis that confirms the subscription and then never answers again, as a connection
    behind a dropped NAT entry looks."""
    try:
        while True:
            command = await _read_command(reader)
            name = command[0].upper()
            if name == b"SUBSCRIBE":
                channel = command[1]
                writer.write(
                    b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
                )
            elif name != b"PING":
                writer.write(b"+OK\r\n")  # the client's handshake (CLIENT SETINFO, ...)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


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


def test_a_silent_connection_ends_the_subscription_and_the_cache() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(_silent_after_subscribe, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cache = JobCache(ttl=60)
        watch = JobWatch(
            f"redis://127.0.0.1:{port}/0", "q", CollectorRegistry(), cache, PING_SECONDS
        )
        watch.start()
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            assert cache.get(job_id) == QUEUED
            # a PING after PING_SECONDS of quiet, given up PING_SECONDS later without a PONG
            assert await _until(lambda: not watch.subscribed, 10) < 4 * PING_SECONDS
            assert cache.get(job_id) is None
        finally:
            await watch.stop()
            server.close()

    asyncio.run(scenario())
