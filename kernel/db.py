"""Engine and sessions. The engine is made lazily, once per process, never at import time."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from kernel.config import get_settings


def make_engine(database_url: str) -> Engine:
    # hide_parameters: a failing statement's error must not carry article text into the logs.
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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


@lru_cache
def _autocommit(engine: Engine) -> Engine:
    # the same pool; only the isolation level of the connections it hands out differs
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def get_autocommit_engine() -> Engine:
    return _autocommit(get_engine())  # follows get_engine, whose cache tests clear


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for code outside a request (worker, CLI)."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A session in which every statement commits on its own, for reads and single-statement
    writes that need no transaction around them (a job's conditional UPDATE is atomic by itself).

    It saves the BEGIN and the COMMIT or ROLLBACK that the driver sends as round trips of their
    own: a lookup costs one round trip instead of three. The session keeps one connection for the
    whole block: bound to the engine, it would hand its connection back at every commit and check
    one out (with its pre-ping) for the next statement.
    """
    with (
        get_autocommit_engine().connect() as connection,
        Session(connection, expire_on_commit=False) as session,
    ):
        yield session
