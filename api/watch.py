"""Waking the requests that wait on a job (long-polls, event streams) when it changes.

One Redis subscription per API process listens to the workers' announcements
(`kernel.events`), drops the job's cached answer (`api.job_cache`) and sets the events of the
requests waiting on that job. Written by hand:
broadcaster-style libraries open a subscription per channel or per waiter; this needs one
channel, one connection and a dictionary.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import redis.asyncio
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from api.job_cache import JobCache
from kernel.events import job_events_channel

log = structlog.get_logger(__name__)

# While subscribed, a waiter still reads the database this often, in case an announcement was
# lost; while the subscription is down, it reads as often as it did before announcements existed.
SUBSCRIBED_POLL_INTERVAL = 2.0
UNSUBSCRIBED_POLL_INTERVAL = 0.1
MAX_RECONNECT_DELAY = 5.0
PING_SECONDS = 5.0  # a quiet subscription is checked this often; a dead one ends within 2x

AnswerT = TypeVar("AnswerT")


class JobWatch:
    """Per API process: which requests wait on which job, and the subscription that wakes them."""

    def __init__(
        self,
        redis_url: str,
        queue: str,
        registry: CollectorRegistry,
        cache: JobCache,
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        self.redis_url = redis_url
        self.ping_seconds = ping_seconds
        self.channel = job_events_channel(queue)
        self._cache = cache
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False
        self._subscribed_gauge = Gauge(
            "evenhand_job_watch_subscribed",
            "1 while this API process is subscribed to the workers' job announcements",
            registry=registry,
        )
        self._waiting_gauge = Gauge(
            "evenhand_job_watch_waiting",
            "Requests of this API process waiting on a job (long-polls, event streams)",
            registry=registry,
        )
        self._wakeups = Counter(
            "evenhand_job_watch_wakeups",
            "Waiting requests (long-polls, event streams) woken by a job announcement",
            registry=registry,
        )

    @property
    def poll_interval(self) -> float:
        return SUBSCRIBED_POLL_INTERVAL if self.subscribed else UNSUBSCRIBED_POLL_INTERVAL

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="job-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @contextmanager
    def watching(self, job_id: object) -> Iterator[asyncio.Event]:
        """An event set whenever the job is announced. Enter it *before* reading the job, so
        that a change between the read and the wait is not missed."""
        key, event = str(job_id), asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        self._waiting_gauge.inc()
        try:
            yield event
        finally:
            self._waiting_gauge.dec()
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until the job is announced or `timeout` seconds, capped at the poll interval, pass."""
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(timeout, self.poll_interval))
        event.clear()

    async def long_poll(
        self,
        job_id: object,
        seconds: float,
        read: Callable[[bool], Awaitable[AnswerT]],
        done: Callable[[AnswerT], bool],
    ) -> AnswerT:
        """`read(False)`, then `read(True)` (fresh) whenever the job is announced, until `done`
        says the answer is final or `seconds` pass."""
        deadline = time.monotonic() + seconds
        with self.watching(job_id) as changed:
            answer = await read(False)
            while not done(answer):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await self.wait(changed, remaining)
                answer = await read(True)
        return answer

    def _changed(self, job_id: str) -> None:
        try:
            self._cache.forget(uuid.UUID(job_id))
        except ValueError:  # not a job id: nothing of ours sends that
            return
        for event in self._waiters.get(job_id, ()):
            event.set()
            self._wakeups.inc()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            client = redis.asyncio.Redis.from_url(self.redis_url, socket_keepalive=True)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    delay = 0.5
                    await self._relay(pubsub)
            except Exception as exc:  # whatever ends the subscription, keep trying
                log.warning("job_watch_unsubscribed", error=type(exc).__name__)
            finally:
                self._cache.stop_serving()
                self.subscribed = False
                self._subscribed_gauge.set(0)
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _relay(self, pubsub: redis.asyncio.client.PubSub) -> None:
        """Pass announcements on until the subscription ends or goes silent.

        Subscribed only once Redis confirms it: announcements made before are not heard. A
        connection can die without a word (a partition, a dropped NAT entry), so a PING goes out
        whenever nothing came for `ping_seconds`, and the subscription ends when that PING has
        had no answer for `ping_seconds` (redis-py's own health check sends its PING but never
        checks for the PONG).

        A busy process must not pass for a dead connection. Two things made it look dead: the
        deadline counted from the last message, so one wake-up of the event loop late by more
        than `ping_seconds` ended the subscription before any PING went out; and when the loop
        had been held up past a read's timeout, the PONG that arrived meanwhile and the timeout
        became due in the same loop turn, and the timeout cancels the read that the PONG had
        just woken. So the deadline counts from the PING, and before the verdict one read
        without waiting takes what the loop has already received.
        """
        ping_sent: float | None = None  # when the PING now unanswered went out
        while True:
            message = await pubsub.get_message(timeout=self.ping_seconds)
            if message is None and ping_sent is not None:
                message = await pubsub.get_message(timeout=0)
            now = time.monotonic()
            if message is not None:
                ping_sent = None  # any message, the PONG included, shows the connection works
                if message["type"] == "subscribe":
                    self._cache.start_serving()
                    self.subscribed = True
                    self._subscribed_gauge.set(1)
                elif message["type"] == "message":
                    self._changed(message["data"].decode())
            elif ping_sent is None:
                await pubsub.ping()
                ping_sent = now
            elif now - ping_sent >= self.ping_seconds:
                raise ConnectionError(f"no answer to a PING for {now - ping_sent:.1f} s")
