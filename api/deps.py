"""Dependencies shared by the routes: a database session and the caller's API key."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.errors import Problem
from api.limits import enforce_rate_limit
from api.watch import JobWatch
from evenhand.config import Settings, get_settings
from evenhand.db import get_engine
from evenhand.keys import find_active_key
from evenhand.models import ApiKey


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(
    auto_error=False, description="An evenhand API key: `evenhand keys create NAME`"
)


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_current_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's active key, within its rate limit.

    The key is read in a session of its own, closed at once: a dependency's session would be held
    until the response is sent, and a long-poll or an event stream would keep a connection from
    the pool for its whole wait (32 of them exhausted the pool in the benchmarks).
    """
    if credentials is None:
        raise Problem(
            401,
            "Send an API key as 'Authorization: Bearer <key>' (create one with 'evenhand keys create NAME').",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with Session(get_engine()) as session:
        api_key = find_active_key(session, credentials.credentials)
    if api_key is None:
        raise Problem(
            401,
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    enforce_rate_limit(api_key, settings)
    return api_key


CurrentKeyDep = Annotated[ApiKey, Depends(get_current_key)]


def get_job_watch(request: Request) -> JobWatch:
    return request.app.state.job_watch


JobWatchDep = Annotated[JobWatch, Depends(get_job_watch)]
