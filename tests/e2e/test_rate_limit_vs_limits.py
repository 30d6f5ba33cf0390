"""Our per-key rate limiter (api/limits.py, a sliding window counter written by hand) decides
like the `limits` library's SlidingWindowCounterRateLimiter on the same requests at the same
times. Both read the clock through `time.time()`; here both read one simulated clock, so a run
covers minutes of traffic in a fraction of a second. Ours runs against a real Redis, in one API
process, where its docstring says its count is exact.

The reference is told of exactly the requests ours admitted, so both hold the same counts and
every decision can be compared, and every one must be the same: both admit a request while the
weighted count (the previous window's share plus the current count) is below the limit.
"""

import asyncio
import random
import secrets
import types
from collections.abc import Iterator

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

import api.limits
from api.errors import Problem
from api.limits import RateLimiter
from kernel.config import Settings
from kernel.models import ApiKey

SETTINGS = Settings()
START = 1_700_000_000.0  # a simulated UNIX time; windows are aligned to multiples of the period


class SimulatedClock:
    def __init__(self) -> None:
        self.now = START

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - START


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedClock]:
    clock = SimulatedClock()
    simulated = types.SimpleNamespace(time=clock.time, monotonic=clock.monotonic)
    monkeypatch.setattr(api.limits, "time", simulated)
    monkeypatch.setattr("limits.storage.memory.time", simulated)
    yield clock


def arrivals(seed: int, per_period: float, period: int, periods: int) -> list[float]:
    """Poisson arrivals at `per_period` requests per period on average, from START on."""
    rng = random.Random(seed)
    times, now = [], START + rng.uniform(0, period)
    while now < START + periods * period:
        times.append(now)
        now += rng.expovariate(per_period / period)
    return times


def decide(redis_url: str, clock: SimulatedClock, rate: str, times: list[float]) -> list[tuple]:
    """(ours admits, limits admits, limits' weighted count) for each request."""
    item = parse(rate)
    storage = MemoryStorage()
    reference = SlidingWindowCounterRateLimiter(storage)
    key = ApiKey(name="t", prefix="eh_", key_hash=secrets.token_hex(32), rate_limit=rate)

    async def run() -> list[tuple]:
        ours = RateLimiter(redis_url)  # no flusher: a key syncs when its totals go stale
        decisions = []
        try:
            for t in times:
                clock.now = t
                previous, previous_ttl, current, _ = storage.get_sliding_window(
                    item.key_for(key.key_hash), item.get_expiry()
                )
                weighted = previous * previous_ttl / item.get_expiry() + current
                allowed = reference.test(item, key.key_hash)
                try:
                    await ours.enforce(key, SETTINGS)
                    admitted = True
                except Problem as refused:
                    assert refused.status == 429
                    admitted = False
                if admitted:
                    assert reference.hit(item, key.key_hash)
                decisions.append((admitted, allowed, weighted))
        finally:
            await ours.stop()
        return decisions

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("rate", "per_period", "seed"),
    [
        ("10/minute", 15, 1),  # above the limit: refusals every window
        ("10/minute", 9, 2),  # near the limit: refusals now and then
        ("30/10 seconds", 60, 3),  # bursts at twice the limit
        ("5/hour", 5, 4),
    ],
)
def test_decisions_match_the_limits_sliding_window_counter(
    redis_url: str, clock: SimulatedClock, rate: str, per_period: float, seed: int
) -> None:
    period = parse(rate).get_expiry()
    decisions = decide(redis_url, clock, rate, arrivals(seed, per_period, period, periods=20))
    assert len(decisions) > 50
    assert any(not ours for ours, _allowed, _w in decisions)  # the traffic reaches the limit
    mismatches = [(ours, weighted) for ours, allowed, weighted in decisions if ours != allowed]
    assert mismatches == [], f"{len(mismatches)} of {len(decisions)} decisions differ"
    assert any(ours and allowed for ours, allowed, _w in decisions)
