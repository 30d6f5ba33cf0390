"""The API's subscription to job announcements: it serves the job cache only while Redis is
really there, and gives up on a connection that went silent."""

import asyncio
import threading
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


def _started_watch(redis_url: str, channel: str) -> tuple[JobWatch, JobCache]:
    """A started watch on `channel` (inside the running loop), with its own empty cache."""
    cache = JobCache(ttl=60)
    watch = JobWatch(redis_url, channel, CollectorRegistry(), cache, PING_SECONDS)
    watch.start()
    return watch, cache


def _spin(seconds: float) -> None:
    """Keep the CPU busy in Python code for `seconds`, holding the GIL as a busy handler does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


class StallingProxy:
    """A TCP proxy in front of the real Redis that can go silent: after `stall()` it swallows
    every byte both ways while keeping the connections open, as one behind a dropped NAT entry
    looks."""

    def __init__(self, redis_url: str, busy_after_pong: float = 0.0) -> None:
        address = redis.asyncio.Redis.from_url(redis_url).connection_pool.connection_kwargs
        self.upstream = (address.get("host", "127.0.0.1"), address.get("port", 6379))
        self.db = address.get("db", 0)
        self.stalled = False
        # hold the event loop up this long right after passing a PONG on, as a busy handler
        # in the same process would
        self.busy_after_pong = busy_after_pong
        self.pongs = 0
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
                if b"pong" in data.lower():
                    self.pongs += 1
                    _spin(self.busy_after_pong)


def test_a_quiet_healthy_subscription_stays_and_serves(redis_url: str) -> None:
    async def scenario() -> None:
        watch, cache = _started_watch(redis_url, f"q-{uuid.uuid4().hex}")
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
        queue = f"q-{uuid.uuid4().hex}"
        watch, cache = _started_watch(redis_url, queue)
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
        watch, cache = _started_watch(await proxy.start(), "q")
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


def test_a_busy_process_keeps_a_healthy_subscription(redis_url: str) -> None:
    async def scenario() -> None:
        watch, cache = _started_watch(redis_url, f"q-{uuid.uuid4().hex}")
        stop = threading.Event()
        # busy threads contend for the interpreter all along, as request handlers do under load
        spinners = [
            threading.Thread(target=lambda: [_spin(0.05) for _ in iter(stop.is_set, True)])
            for _ in range(4)
        ]
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            for spinner in spinners:
                spinner.start()
            # and the event loop itself is held up, longer than a PING interval, at every phase
            # of the watch's cycle (before its PING, while the PONG is on its way)
            for stall in (1.5, 2.5, 1.2, 3.5, 1.8, 2.2, 4.0, 1.4) * 2:
                _spin(stall * PING_SECONDS)
                await asyncio.sleep(0.3 * PING_SECONDS)
                assert watch.subscribed, "the subscription was given up on a healthy Redis"
            assert cache.get(job_id) == QUEUED
        finally:
            stop.set()
            for spinner in spinners:
                if spinner.is_alive():
                    spinner.join()
            await watch.stop()

    asyncio.run(scenario())


def test_a_pong_received_while_the_loop_was_busy_counts(redis_url: str) -> None:
    async def scenario() -> None:
        # The PONG reaches the watch's socket, then the loop is busy past the read's timeout:
        # the PONG and the timeout are handled in the same loop turn.
        proxy = StallingProxy(redis_url, busy_after_pong=2 * PING_SECONDS)
        watch, cache = _started_watch(await proxy.start(), "q")
        try:
            await _until(lambda: watch.subscribed, 5)
            job_id = uuid.uuid4()
            cache.fill(job_id, cache.reserve(job_id), QUEUED)
            await _until(lambda: proxy.pongs >= 4 or not watch.subscribed, 10)
            assert watch.subscribed and cache.get(job_id) == QUEUED
        finally:
            await watch.stop()
            proxy.close()

    asyncio.run(scenario())
