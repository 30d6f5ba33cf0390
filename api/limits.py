"""Per-key request rate limits (shared by every API replica through Redis) and daily quotas
(from the database), so that one key cannot run up the bill (OWASP API4)."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlmodel import Session, col, func, select

from api.errors import Problem
from evenhand.config import Settings
from evenhand.models import ApiKey, Job, Result

log = structlog.get_logger(__name__)


class RateLimiter:
    """Per-key request limits in Redis (moving window), shared by every API replica. One per API
    process: its asyncio Redis pool belongs to the process's event loop."""

    def __init__(self, redis_url: str) -> None:
        # short timeouts: with Redis away the limit fails open quickly instead of holding requests
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def enforce(self, api_key: ApiKey, settings: Settings) -> None:
        """429 with Retry-After once the key used up its window. Fails open when Redis is away:
        the API keeps accepting work during a broker outage (docs/reliability.md)."""
        item = _item(api_key.rate_limit or settings.rate_limit)
        # the key's hash, not its row id: unique even across deployments that share one Redis
        identity = api_key.key_hash[:32]
        try:
            if await self._limiter.hit(item, "evenhand-api", identity):
                return
            stats = await self._limiter.get_window_stats(item, "evenhand-api", identity)
        except Exception as exc:  # redis errors of several kinds
            log.warning("rate_limit_unavailable", error=type(exc).__name__)
            return
        retry_after = max(1, int(stats.reset_time - datetime.now(UTC).timestamp()) + 1)
        raise Problem(
            429,
            f"Rate limit of {item} for this API key exceeded; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


@lru_cache
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1


def enforce_daily_quota(
    session: Session, api_key: ApiKey, settings: Settings, new_jobs: int
) -> None:
    """429 when `new_jobs` more would pass the key's jobs per UTC day, or its LLM tokens of the
    day are used up."""
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    job_quota = api_key.daily_jobs if api_key.daily_jobs is not None else settings.daily_jobs
    token_quota = (
        api_key.daily_tokens if api_key.daily_tokens is not None else settings.daily_tokens
    )
    # both sums in one round trip
    jobs_today, tokens_today = session.exec(
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
    retry = {"Retry-After": str(_seconds_to_midnight())}
    if jobs_today + new_jobs > job_quota:
        raise Problem(
            429,
            f"Daily quota of {job_quota} articles for this API key reached "
            f"({jobs_today} today); it resets at 00:00 UTC.",
            headers=retry,
        )
    if tokens_today >= token_quota:
        raise Problem(
            429,
            f"Daily quota of {token_quota} LLM tokens for this API key used up "
            f"({tokens_today} today); it resets at 00:00 UTC.",
            headers=retry,
        )
