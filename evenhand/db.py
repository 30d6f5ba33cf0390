"""Engine and sessions. The engine is made lazily, once per process, never at import time."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from evenhand.config import get_settings


def make_engine(database_url: str) -> Engine:
    # hide_parameters: a failing statement's error must not carry article text into the logs.
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(
        # max_overflow: enough for the API's 40 worker threads and a worker's 64 job threads
        database_url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=60,
        hide_parameters=True,
    )


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if path := settings.sqlite_path():
        path.parent.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for code outside a request (worker, CLI)."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session
