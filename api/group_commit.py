"""Group commit for single-article submits: the rows of every submit that arrives while the
previous group is being written go into the database in one transaction; their tasks are then
published through one broker connection.

A submit waits until its rows are committed, never longer: it answers 202 only for an article
that is stored. Publishing follows the commit, after the submits are answered; a job whose
publish fails (the broker is away) or never happens (the process died) stays `queued` in the
database with `published_at` empty, and the sweeper publishes it (kernel.jobs.publish_waiting).

When one submit's rows break the group's transaction (an Idempotency-Key two requests raced for),
each submit of the group is written alone, so the others still land and the one that broke it
gets its own error. When the database is away, every submit of the group gets the error (503):
nothing of it was stored.
"""

import asyncio
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from opentelemetry import context
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from kernel.db import get_engine
from kernel.jobs import publish_jobs

log = structlog.get_logger(__name__)

MAX_GROUP = 500  # rows of more submits than this wait for the next group


# a table and one row's values (kernel.models.row_values): inserted without building ORM objects
Row = tuple[type[SQLModel], dict[str, Any]]


@dataclass
class PendingSubmit:
    rows: list[Row]  # in insert order: the article, its job, an idempotency record
    job_id: uuid.UUID
    label: str | None
    # the request's trace context: the task is published in it, so the job's trace starts at the
    # POST that submitted it
    trace_context: context.Context = field(default_factory=context.get_current)
    stored: Future[None] = field(default_factory=Future)


class GroupCommit:
    """One writer thread per API process; `write` is called from the request threads."""

    def __init__(self) -> None:
        self._pending: list[PendingSubmit] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def write(self, rows: list[Row], job_id: uuid.UUID, label: str | None) -> None:
        """Store the rows with the next group; returns once they are committed, else raises
        what the database raised."""
        self._enqueue(rows, job_id, label).result()

    async def write_async(self, rows: list[Row], job_id: uuid.UUID, label: str | None) -> None:
        """`write` for the event loop: the request waits for its group without a thread."""
        await asyncio.wrap_future(self._enqueue(rows, job_id, label))

    def _enqueue(self, rows: list[Row], job_id: uuid.UUID, label: str | None) -> Future[None]:
        item = PendingSubmit(rows, job_id, label)
        with self._changed:
            if self._closed:
                raise RuntimeError("the API is shutting down")
            self._pending.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()
            self._changed.notify()
        return item.stored

    def close(self) -> None:
        """Write what is pending, then stop the writer (at shutdown)."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending) or self._closed)
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                if not group and self._closed:
                    return
            if stored := write_group(group):
                # after the submits are answered; the submits that arrive meanwhile make the
                # next group larger (a publisher thread of its own measured no faster)
                labels = {item.job_id: item.label for item in stored}
                contexts = {item.job_id: item.trace_context for item in stored}
                publish_jobs(list(labels), labels, mark_later=True, contexts=contexts)


def write_group(group: list[PendingSubmit]) -> list[PendingSubmit]:
    """Commit the group's rows in one transaction and answer each submit; the ones stored."""
    try:
        _commit([item.rows for item in group])
    except IntegrityError as exc:
        if len(group) == 1:
            group[0].stored.set_exception(exc)
            return []
        return [item for item in group if _write_alone(item)]
    except Exception as exc:  # the database is away or refused: nothing of the group is stored
        log.warning("group_commit_failed", submits=len(group), error=type(exc).__name__)
        for item in group:
            item.stored.set_exception(exc)
        return []
    for item in group:
        item.stored.set_result(None)
    return group


def _write_alone(item: PendingSubmit) -> bool:
    try:
        _commit([item.rows])
    except Exception as exc:
        item.stored.set_exception(exc)
        return False
    item.stored.set_result(None)
    return True


def _commit(row_lists: list[list[Row]]) -> None:
    """Every list's first rows, inserted together, then every list's second rows, and so on: the
    rows a later one refers to are in first, and each table gets one multi-row INSERT."""
    with Session(get_engine()) as session:
        for position in range(max(len(rows) for rows in row_lists)):
            tables: dict[type[SQLModel], list[dict[str, Any]]] = {}
            for rows in row_lists:
                if len(rows) > position:
                    model, values = rows[position]
                    tables.setdefault(model, []).append(values)
            for model, values_list in tables.items():
                session.execute(sa.insert(model), values_list)
        session.commit()
