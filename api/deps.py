"""Dependencies shared by the routes: settings, a database session and the caller's API key."""

from collections.abc import AsyncIterator
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.group_commit import GroupCommit
from api.job_cache import JobCache
from api.limits import DailyUsage, RateLimiter
from api.watch import JobWatch
from kernel.config import Settings, get_settings
from kernel.db import autocommit_scope, get_engine
from kernel.keys import find_active_key, hash_key
from kernel.models import ApiKey


async def get_session() -> AsyncIterator[Session]:
    """A session for the request. Async, so that FastAPI runs neither its start nor its end in
    the thread pool (as it does a plain generator's): a session connects only when a route uses
    it, and one that holds no connection any more closes at once."""
    session = Session(get_engine())
    try:
        yield session
    finally:
        if session.in_transaction():
            # a route read without committing: the rollback is a round trip, off the event loop
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def settings_dependency() -> Settings:
    # async, so FastAPI does not send it to the thread pool (as it does every plain `def`)
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dependency)]

_bearer = HTTPBearer(
    auto_error=False, description="An evenhand API key: `evenhand keys create NAME`"
)


def _read_key(plaintext: str) -> ApiKey | None:
    # A session of its own, closed at once: a dependency's session would be held until the
    # response is sent, and a long-poll or an event stream would keep a connection from the
    # pool for its whole wait (32 of them exhausted the pool in the benchmarks).
    with autocommit_scope() as session:
        return find_active_key(session, plaintext)


class KeyCache:
    """Active keys by hash for `ttl` seconds, so that most requests skip the database lookup.

    A revoked key therefore keeps working for up to `ttl` seconds in each API process
    (EVENHAND_KEY_CACHE_SECONDS; 0 turns the cache off). Unknown keys are never cached, so
    guessing cannot fill it. Used from the event loop only, so it needs no lock.
    """

    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self._keys: TTLCache[str, ApiKey] | None = TTLCache(maxsize, ttl) if ttl > 0 else None

    async def find(self, plaintext: str) -> ApiKey | None:
        digest = hash_key(plaintext)
        if self._keys is not None and (cached := self._keys.get(digest)) is not None:
            return cached
        api_key = await run_in_threadpool(_read_key, plaintext)
        if api_key is not None and self._keys is not None:
            self._keys[digest] = api_key
        return api_key


async def get_current_key(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's active key, within its rate limit."""
    if credentials is None:
        raise Problem(
            401,
            "Send an API key as 'Authorization: Bearer <key>' (create one with 'evenhand keys create NAME').",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key_cache: KeyCache = request.app.state.key_cache
    api_key = await key_cache.find(credentials.credentials)
    if api_key is None:
        raise Problem(
            401,
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    rate_limiter: RateLimiter = request.app.state.rate_limiter
    await rate_limiter.enforce(api_key, settings)
    return api_key


CurrentKeyDep = Annotated[ApiKey, Depends(get_current_key)]


async def get_job_watch(request: Request) -> JobWatch:
    return request.app.state.job_watch


JobWatchDep = Annotated[JobWatch, Depends(get_job_watch)]


async def get_daily_usage(request: Request) -> DailyUsage:
    return request.app.state.daily_usage


DailyUsageDep = Annotated[DailyUsage, Depends(get_daily_usage)]


async def get_group_commit(request: Request) -> GroupCommit:
    return request.app.state.group_commit


GroupCommitDep = Annotated[GroupCommit, Depends(get_group_commit)]


async def get_job_cache(request: Request) -> JobCache:
    return request.app.state.job_cache


JobCacheDep = Annotated[JobCache, Depends(get_job_cache)]
