"""The per-key rate limiter against a real Redis: exact within one API process, shared between
replicas within its sync interval, still enforced per process when Redis is away."""

import asyncio
import secrets
import time

import pytest

from api.errors import Problem
from api.limits import FRESH_SECONDS, RateLimiter, _KeyWindow
from kernel.config import Settings
from kernel.models import ApiKey

SETTINGS = Settings(rate_limit="600/minute")


def a_key(rate_limit: str) -> ApiKey:
    return ApiKey(name="t", prefix="eh_", key_hash=secrets.token_hex(32), rate_limit=rate_limit)


async def admitted(limiter: RateLimiter, key: ApiKey, requests: int) -> list[bool]:
    """Which of `requests` requests, one after another, the limiter lets through."""
    answers = []
    for _ in range(requests):
        try:
            await limiter.enforce(key, SETTINGS)
            answers.append(True)
        except Problem as refused:
            assert refused.status == 429
            answers.append(False)
    return answers


def test_one_process_admits_exactly_the_limit(redis_url: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(redis_url)
        limiter.start()
        try:
            key = a_key("5/minute")
            assert await admitted(limiter, key, 7) == [True] * 5 + [False] * 2
            with pytest.raises(Problem) as refused:
                await limiter.enforce(key, SETTINGS)
            assert "5 per 1 minute" in refused.value.detail
            # at most the rest of this window plus the part of the next that its 5 requests weigh
            assert 1 <= int(refused.value.headers["Retry-After"]) <= 60 + 12
            # another key is not affected
            assert await admitted(limiter, a_key("5/minute"), 1) == [True]
        finally:
            await limiter.stop()

    asyncio.run(scenario())


def test_replicas_share_the_count_through_redis(redis_url: str) -> None:
    async def scenario() -> None:
        first, second = RateLimiter(redis_url), RateLimiter(redis_url)
        first.start()
        second.start()
        try:
            key = a_key("10/minute")
            assert await admitted(first, key, 6) == [True] * 6
            await asyncio.sleep(FRESH_SECONDS + 0.1)  # the first replica has sent its count
            assert await admitted(second, key, 6) == [True] * 4 + [False] * 2
            await asyncio.sleep(FRESH_SECONDS + 0.1)
            assert await admitted(first, key, 1) == [False]
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(scenario())


def test_with_redis_away_each_process_still_enforces_the_limit() -> None:
    async def scenario() -> None:
        limiter = RateLimiter("redis://127.0.0.1:1/0")  # nothing listens there
        limiter.start()
        try:
            started = time.monotonic()
            assert await admitted(limiter, a_key("3/minute"), 5) == [True] * 3 + [False] * 2
            assert time.monotonic() - started < 3  # one failed sync, then local decisions
        finally:
            await limiter.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("limit", "current", "previous", "into"),
    [
        (3, 3, 0, 0.5),  # used up in this window: wait for the next and then some
        (3, 3, 3, 0.1),
        (10, 4, 12, 0.2),  # the previous window's share must decay
        (600, 600, 0, 0.99),
        (1, 1, 0, 0.0),
    ],
)
def test_retry_after_is_when_one_more_request_fits(
    limit: int, current: int, previous: int, into: float
) -> None:
    period, window = 60, 1000
    state = _KeyWindow(
        identity="k", limit=limit, period=period, window=window, current=current, previous=previous
    )
    now = (window + into) * period
    assert state.estimate(now) + 1 > limit  # refused now
    wait = state.retry_after(now)

    def fits(at: float) -> bool:
        later = _KeyWindow(identity="k", limit=limit, period=period, window=int(at // period))
        if later.window == window:
            later.current, later.previous = current, previous
        elif later.window == window + 1:
            later.previous = current
        return later.estimate(at) + 1 <= limit

    assert fits(now + wait)
    assert wait == 1 or not fits(now + wait - 1)


def test_a_limit_of_zero_refuses_every_request(redis_url: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(redis_url)
        try:
            with pytest.raises(Problem) as refused:
                await limiter.enforce(a_key("0/minute"), SETTINGS)
            assert refused.value.status == 429
            assert refused.value.headers["Retry-After"] == "60"
        finally:
            await limiter.stop()

    asyncio.run(scenario())
