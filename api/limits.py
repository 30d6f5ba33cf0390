"""Per-key request rate limits (shared by every API replica through Redis) and daily quotas
(from the database), so that one key cannot run up the bill (OWASP API4)."""

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis.asyncio
import sqlalchemy as sa
import structlog
from cachetools import TTLCache
from limits import RateLimitItem, parse
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from kernel.config import Settings
from kernel.models import ApiKey, Job, Result

log = structlog.get_logger(__name__)


SYNC_INTERVAL = 0.1  # seconds between a replica's exchanges of counts with Redis
FRESH_SECONDS = 2 * SYNC_INTERVAL  # older totals are read again before a request is decided
UNAVAILABLE_BACKOFF = 1.0  # with Redis away, a key decides on local counts this long per try
STATE_SECONDS = 120.0  # a key's local state is made again (from Redis) after this long


@dataclass(eq=False)
class _KeyWindow:
    """One key's request count as this API process knows it: Redis's totals at the last sync
    (every replica's requests) plus this process's requests since."""

    identity: str
    limit: int
    period: int  # seconds
    window: int = -1  # the current window: UNIX time // period
    current: int = 0  # requests in the current window, every replica, at the last sync
    previous: int = 0  # requests in the window before, every replica
    pending: int = 0  # this process's requests not yet added in Redis
    pending_window: int = -1
    fresh_until: float = -math.inf  # monotonic time after which the totals must be read again
    sync: asyncio.Future[None] | None = None

    def estimate(self, now: float) -> float:
        """Requests in the sliding period that ends now: the previous window's count weighted
        by how much of it the period still covers, plus the current window's."""
        covered = 1 - (now / self.period - self.window)
        return self.previous * covered + self.current + self.pending

    def retry_after(self, now: float) -> int:
        """Seconds until one more request fits, if no other comes meanwhile."""
        if self.limit < 1:  # a key limited to 0 (suspended) never fits
            return self.period
        into = now / self.period - self.window  # fraction of the current window gone
        used = self.current + self.pending
        if used + 1 > self.limit:
            # the next window must begin, and this window's count (then the previous one)
            # must weigh little enough
            wait = (1 - into) + max(0.0, 1 - (self.limit - 1) / used)
        else:  # the previous window's share decays until one more fits
            wait = 1 - (self.limit - used - 1) / self.previous - into
        return max(1, math.ceil(wait * self.period))


class RateLimiter:
    """Per-key request limits shared by every API replica through Redis (sliding window counter,
    one Redis counter per key and window).

    Written by hand because a call to Redis per request (the `limits` library's way) cost more
    CPU than the rest of a cached `GET /v1/jobs/{id}`: each process counts its own requests and
    exchanges counts with Redis every SYNC_INTERVAL in one pipelined round trip, and before
    deciding when a key's totals are older than FRESH_SECONDS. Within one process the count is
    exact; across replicas a key can exceed its limit by what the other replicas admitted in
    the last FRESH_SECONDS + SYNC_INTERVAL (0.3 s) or so. Fails open when Redis is away (each
    process still enforces the limit on its own requests), so the API keeps accepting work
    during a broker outage (docs/reliability.md). One per API process: its asyncio Redis pool
    belongs to the process's event loop.
    """

    def __init__(self, redis_url: str) -> None:
        # short timeouts: with Redis away a waiting request goes on within a second
        self._redis = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=1, socket_connect_timeout=1
        )
        self._keys: TTLCache[tuple[str, int, int], _KeyWindow] = TTLCache(
            maxsize=100_000, ttl=STATE_SECONDS
        )
        self._unsent: set[_KeyWindow] = set()
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_every_interval(), name="rate-limit-sync")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        on_their_way = {state.sync for state in self._keys.values() if state.sync is not None}
        await asyncio.gather(*on_their_way, return_exceptions=True)
        await self._sync(list(self._unsent))  # send what this process counted
        await self._redis.aclose()

    async def enforce(self, api_key: ApiKey, settings: Settings) -> None:
        """429 with Retry-After once the key used up its limit."""
        item = _item(api_key.rate_limit or settings.rate_limit)
        # the key's hash, not its row id: unique even across deployments that share one Redis
        identity = api_key.key_hash[:32]
        period = item.get_expiry()
        state = self._keys.get((identity, item.amount, period))
        if state is None:
            state = _KeyWindow(identity=identity, limit=item.amount, period=period)
            self._keys[(identity, item.amount, period)] = state
        while True:  # again if the window turned while a sync was on its way
            now = time.time()
            if state.window == int(now // period) and time.monotonic() <= state.fresh_until:
                break
            await self._synced(state)
        # admitted while the weighted count is below the limit, as `limits` decides
        if state.estimate(now) >= state.limit:
            retry_after = state.retry_after(now)
            raise Problem(
                429,
                f"Rate limit of {item} for this API key exceeded; retry in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
            )
        if state.pending == 0:
            state.pending_window = state.window
        state.pending += 1
        self._unsent.add(state)

    async def _synced(self, state: _KeyWindow) -> None:
        # requests arriving while a sync of their key is on its way wait for that one
        sync = state.sync or self._start_sync([state])
        # shielded: a client that hangs up must not cancel the sync other requests wait for
        await asyncio.shield(sync)

    def _start_sync(self, states: list[_KeyWindow]) -> asyncio.Future[None]:
        sync = asyncio.ensure_future(self._sync(states))
        for state in states:
            state.sync = sync
        return sync

    async def _flush_every_interval(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            if due := [state for state in self._unsent if state.sync is None]:
                try:
                    # shielded: stopping the flusher lets a sync on its way finish
                    await asyncio.shield(self._start_sync(due))
                except Exception:  # a bug must not end the flushing for good
                    log.exception("rate_limit_sync_failed")

    async def _sync(self, states: list[_KeyWindow]) -> None:
        """Add the states' pending requests in Redis and read back every replica's totals, in
        one round trip for all of them."""
        if not states:
            return
        now = time.time()
        sent = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for state in states:
                window = int(now // state.period)
                if state.pending:
                    key = _redis_key(state, state.pending_window)
                    pipe.incrby(key, state.pending)
                    pipe.expire(key, 2 * state.period + 1)
                pipe.mget(_redis_key(state, window), _redis_key(state, window - 1))
                sent.append((state, window, state.pending))
                state.pending = 0
                self._unsent.discard(state)
            try:
                replies = await pipe.execute()
            except Exception as exc:  # redis errors of several kinds; fail open
                log.warning("rate_limit_unavailable", error=type(exc).__name__)
                replies = None
            finally:
                for state in states:
                    state.sync = None
        totals = iter(reply for reply in (replies or []) if isinstance(reply, list))
        for state, window, pending in sent:
            if replies is None:
                # decide on this process's own counts for a while; what it counted meanwhile
                # never reaches the other replicas (failing open)
                if window != state.window:
                    state.previous = state.current + pending if window == state.window + 1 else 0
                    state.current, state.window = 0, window
                else:
                    state.current += pending
                state.fresh_until = time.monotonic() + UNAVAILABLE_BACKOFF
                continue
            current, previous = next(totals)
            state.window, state.current, state.previous = (
                window,
                int(current or 0),
                int(previous or 0),
            )
            state.fresh_until = time.monotonic() + FRESH_SECONDS


def _redis_key(state: _KeyWindow, window: int) -> str:
    return f"evenhand-api:rate:{state.identity}:{state.period}:{window}"


@lru_cache
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1


@dataclass
class _Usage:
    day: datetime
    jobs: int
    tokens: int
    fresh_until: float
    refreshing: bool = False  # a thread is reading the database for a new reading


class DailyUsage:
    """Each key's jobs and LLM tokens of the UTC day, read from the database at most once per
    `fresh_seconds` and counted in this process in between.

    Counting the key's jobs on every submit cost a query that grows with the day's jobs, the
    largest share of a submit's time under load. Within one process the count is exact; across
    replicas a key can pass its quota by what the other replicas accepted within `fresh_seconds`,
    and tokens show up within `fresh_seconds` of the worker storing them.
    """

    def __init__(self, fresh_seconds: float = 1.0, max_keys: int = 100_000) -> None:
        self.fresh_seconds = fresh_seconds
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._usage: dict[int, _Usage] = {}

    def _cached(self, api_key: ApiKey, day: datetime) -> tuple[_Usage | None, bool]:
        """The reading to count against, and whether the caller must read the database first
        (then the reading it returns is the expired one, or None)."""
        assert api_key.id is not None
        with self._lock:
            usage = self._usage.get(api_key.id)
            if usage is None or usage.day != day:
                return None, True
            if time.monotonic() < usage.fresh_until or usage.refreshing:
                # while one thread reads the database, the others go on with the reading that
                # just expired, instead of all reading at once
                return usage, False
            usage.refreshing = True
            return usage, True

    def _read(
        self, session: Session, api_key: ApiKey, day: datetime, expired: _Usage | None
    ) -> _Usage:
        """A new reading from the database (a round trip)."""
        assert api_key.id is not None
        try:
            jobs, tokens = _used_since(session, api_key, day)
        except BaseException:
            if expired is not None:
                expired.refreshing = False  # the next request tries again
            raise
        with self._lock:
            if len(self._usage) >= self.max_keys:
                self._usage.clear()
            usage = _Usage(day, jobs, tokens, time.monotonic() + self.fresh_seconds)
            self._usage[api_key.id] = usage
        return usage

    def enforce(self, session: Session, api_key: ApiKey, settings: Settings, new_jobs: int) -> None:
        """429 when `new_jobs` more would pass the key's jobs per UTC day, or its LLM tokens of
        the day are used up; else the jobs are counted."""
        day = _today()
        usage, must_read = self._cached(api_key, day)
        if must_read:
            usage = self._read(session, api_key, day, usage)
        assert usage is not None
        self._count(usage, api_key, settings, new_jobs)

    async def enforce_async(
        self, session: Session, api_key: ApiKey, settings: Settings, new_jobs: int
    ) -> None:
        """`enforce` for the event loop: only a database read goes to the thread pool."""
        day = _today()
        usage, must_read = self._cached(api_key, day)
        if must_read:
            usage = await run_in_threadpool(self._read, session, api_key, day, usage)
        assert usage is not None
        self._count(usage, api_key, settings, new_jobs)

    def _count(self, usage: _Usage, api_key: ApiKey, settings: Settings, new_jobs: int) -> None:
        job_quota = api_key.daily_jobs if api_key.daily_jobs is not None else settings.daily_jobs
        token_quota = (
            api_key.daily_tokens if api_key.daily_tokens is not None else settings.daily_tokens
        )
        with self._lock:
            if usage.jobs + new_jobs > job_quota:
                raise Problem(
                    429,
                    f"Daily quota of {job_quota} articles for this API key reached "
                    f"({usage.jobs} today); it resets at 00:00 UTC.",
                    headers={"Retry-After": str(_seconds_to_midnight())},
                )
            if usage.tokens >= token_quota:
                raise Problem(
                    429,
                    f"Daily quota of {token_quota} LLM tokens for this API key used up "
                    f"({usage.tokens} today); it resets at 00:00 UTC.",
                    headers={"Retry-After": str(_seconds_to_midnight())},
                )
            # counted before the commit: a submit that then fails holds its place until the
            # next read of the database
            usage.jobs += new_jobs


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _used_since(session: Session, api_key: ApiKey, since: datetime) -> tuple[int, int]:
    """The key's jobs created and LLM tokens stored since `since`, in one round trip."""
    jobs, tokens = session.exec(
        select(
            select(func.count())
            .select_from(Job)
            .where(Job.owner_id == api_key.id, col(Job.created_at) >= since)
            .scalar_subquery(),
            select(sa.func.coalesce(func.sum(Result.prompt_tokens + Result.completion_tokens), 0))
            .join(Job, col(Job.id) == col(Result.job_id))
            .where(Job.owner_id == api_key.id, col(Result.created_at) >= since)
            .scalar_subquery(),
        )
    ).one()
    return int(jobs), int(tokens)
