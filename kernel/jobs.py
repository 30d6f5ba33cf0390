"""A job's life in the database, the single source of truth for its status.

Every transition is a conditional UPDATE, so two processes racing on one job (a redelivered task,
a cancel during a run) cannot both win.
"""

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from opentelemetry import context as otel_context
from sqlmodel import Session, col, select

from kernel.celery_app import SUMMARIZE_TASK, WEBHOOK_TASK, celery_app
from kernel.db import autocommit_scope
from kernel.models import Article, Job, JobStatus, LLMRequest, utcnow
from kernel.results import result_of_job
from kernel.schemas import JobError, JobPublic

log = structlog.get_logger(__name__)

PUBLISH_GRACE = timedelta(seconds=5)


LABEL_CHARS = 60


def task_label(*names: str | None) -> str | None:
    """The first of an article's title, source or URL, short: what Flower shows beside the job id
    (never the article's text)."""
    for name in names:
        if name and (words := " ".join(name.split())):
            return words if len(words) <= LABEL_CHARS else words[: LABEL_CHARS - 1] + "…"
    return None


def send_job_task(
    job_id: uuid.UUID, label: str | None = None, attempts: int = 0, producer: Any = None
) -> bool:
    """Publish the job's task by name; False (logged) when the broker is unreachable.

    The task's id is the job's id, so Flower finds a job by its id; `retries` is the runs its
    current attempt count has used; Flower shows the job id and the label as the arguments.
    `producer`: one kombu producer shared by several publishes (Celery acquires one per call).
    """
    job = str(job_id)
    try:
        celery_app.send_task(
            SUMMARIZE_TASK,
            args=[job],
            task_id=job,
            retries=attempts,
            argsrepr=repr((job, label) if label else (job,)),
            producer=producer,
        )
    except Exception as exc:  # kombu raises several connection error types
        log.warning("job_publish_failed", job_id=str(job_id), error=type(exc).__name__)
        return False
    return True


def send_webhook(job_id: str) -> None:
    """Queue the delivery of a finished job to its callback URL."""
    try:
        celery_app.send_task(WEBHOOK_TASK, args=[job_id])
    except Exception as exc:  # the job itself is done and stored; only the notice is lost
        log.warning("webhook_publish_failed", job_id=job_id, error=type(exc).__name__)


def publish_jobs(
    job_ids: list[uuid.UUID],
    labels: dict[uuid.UUID, str | None] | None = None,
    *,
    mark_later: bool = False,
    contexts: dict[uuid.UUID, otel_context.Context] | None = None,
) -> int:
    """Send the jobs' tasks, then mark the sent ones published in one UPDATE; how many were sent.
    Call only after the job rows are committed.

    When the broker is unreachable the rest stay `queued` in the database, safe, with
    `published_at` empty; the sweeper publishes them once the broker is back. `mark_later`
    leaves the UPDATE to a background thread (`published_marks`), off a request's path;
    `contexts` are the trace contexts to publish each job's task in (from another thread).
    """
    sent: list[uuid.UUID] = []
    try:
        with celery_app.producer_or_acquire() as producer:
            for job_id in job_ids:
                token = otel_context.attach(contexts[job_id]) if contexts else None
                try:
                    if not send_job_task(job_id, (labels or {}).get(job_id), producer=producer):
                        break
                finally:
                    if token is not None:
                        otel_context.detach(token)
                sent.append(job_id)
    except Exception as exc:  # releasing a producer whose connection broke
        log.warning("job_publish_failed", jobs=len(job_ids) - len(sent), error=type(exc).__name__)
    if sent and mark_later:
        published_marks.add(sent)
    elif sent:
        with autocommit_scope() as session:
            _mark_published(session, sent)
    return len(sent)


def _mark_published(session: Session, job_ids: list[uuid.UUID]) -> int:
    # only jobs still waiting: a job a worker claimed (or a retry put back) is past this mark
    return _update_job(
        session,
        col(Job.id).in_(job_ids),
        col(Job.status) == JobStatus.queued,
        col(Job.published_at).is_(None),
        published_at=utcnow(),
    )


class PublishedMarks:
    """Marks published jobs from one background thread: every job sent while the previous UPDATE
    ran goes into the next one, so under load one statement marks many submits.

    A mark that comes late, or never (the process died, the database was away), costs a second
    publish: the sweeper publishes an unmarked job again after `PUBLISH_GRACE`, and a worker that
    finds its job already claimed or finished does nothing (`claim_job`). No job is lost.
    """

    def __init__(self) -> None:
        self._pending: list[uuid.UUID] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, job_ids: list[uuid.UUID]) -> None:
        with self._changed:
            self._pending.extend(job_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="published-marks", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def _take(self) -> list[uuid.UUID]:
        with self._changed:
            taken, self._pending = self._pending, []
        return taken

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
            self._write(self._take())

    def _write(self, job_ids: list[uuid.UUID]) -> None:
        if not job_ids:
            return
        try:
            with autocommit_scope() as session:
                _mark_published(session, job_ids)
        except Exception as exc:  # the sweeper publishes unmarked jobs again: nothing is lost
            log.warning("job_publish_mark_failed", jobs=len(job_ids), error=type(exc).__name__)

    def flush(self) -> None:
        """Mark what is pending now, in the caller's thread (at shutdown)."""
        self._write(self._take())


published_marks = PublishedMarks()


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a running job: only the holder of `token` may renew, finish or fail it."""

    job_id: uuid.UUID
    token: uuid.UUID
    attempt: int


def _update_job(session: Session, *where: Any, commit: bool = True, **values: Any) -> int:
    """One conditional UPDATE of job rows; how many rows it changed."""
    return _execute_update(session, sa.update(Job).where(*where).values(**values), commit=commit)


def _execute_update(
    session: Session, statement: sa.Update, params: dict[str, Any] | None = None, *, commit: bool
) -> int:
    """Sent through the session's connection, not the ORM: the ORM's bulk-UPDATE path would match
    the WHERE against every loaded Job, and cost more CPU than the statement. Callers that keep
    a loaded Job refresh it."""
    updated = session.connection().execute(statement, params)
    if commit:
        session.commit()
    return updated.rowcount


def _unheld(now: Any) -> sa.ColumnElement[bool]:
    """Jobs no live worker holds: queued, or running on a lease that expired (its worker died)."""
    return sa.or_(
        col(Job.status) == JobStatus.queued,
        sa.and_(col(Job.status) == JobStatus.running, col(Job.lease_expires_at) < now),
    )


# A worker's statements for every job, built once with bind parameters: building a statement
# and its cache key costs more CPU than executing it. Parameter names
# differ from column names, which SQLAlchemy reserves for SET clauses.
_CLAIM = (
    sa.update(Job)
    .where(
        col(Job.id) == sa.bindparam("job_id"),
        col(Job.attempts) < sa.bindparam("max_attempts"),
        _unheld(sa.bindparam("now")),
    )
    .values(
        status=JobStatus.running,
        attempts=Job.attempts + 1,
        started_at=sa.bindparam("now"),
        lease_token=sa.bindparam("token"),
        lease_expires_at=sa.bindparam("expires"),
        task_id=sa.bindparam("task"),
    )
    .returning(col(Job.attempts))
)
# the job is running under the claim's token: only its holder may renew, finish or fail it
_UPDATE_RUNNING_UNDER_TOKEN = sa.update(Job).where(
    col(Job.id) == sa.bindparam("job_id"),
    col(Job.status) == JobStatus.running,
    col(Job.lease_token) == sa.bindparam("token"),
)
_RENEW = _UPDATE_RUNNING_UNDER_TOKEN.values(lease_expires_at=sa.bindparam("expires"))
_FAIL = _UPDATE_RUNNING_UNDER_TOKEN.values(
    status=JobStatus.failed,
    error_code=sa.bindparam("code"),
    error_message=sa.bindparam("message"),
    finished_at=sa.bindparam("now"),
    lease_expires_at=None,
)
_SUCCEED = _UPDATE_RUNNING_UNDER_TOKEN.values(
    status=JobStatus.succeeded,
    finished_at=sa.bindparam("now"),
    error_code=None,
    error_message=None,
    lease_expires_at=None,
)


def _claim_params(claim: Claim) -> dict[str, Any]:
    return {"job_id": claim.job_id, "token": claim.token}


def claim_job(
    session: Session,
    job_id: uuid.UUID,
    *,
    lease_seconds: float,
    max_attempts: int,
    task_id: str | None = None,
) -> Claim | None:
    """Take a queued job, or a running one whose lease expired (its worker died).

    None when the job is someone else's, finished, canceled, or out of attempts (then it is
    failed with `too_many_attempts`).
    """
    now, token = utcnow(), uuid.uuid4()
    attempts = (
        session.connection()
        .execute(
            _CLAIM,
            {
                "job_id": job_id,
                "max_attempts": max_attempts,
                "now": now,
                "token": token,
                "expires": now + timedelta(seconds=lease_seconds),
                "task": task_id,
            },
        )
        .scalar_one_or_none()
    )
    session.commit()
    if attempts is not None:
        return Claim(job_id=job_id, token=token, attempt=attempts)
    fail_exhausted(session, [job_id], max_attempts)
    return None


def fail_exhausted(session: Session, job_ids: list[uuid.UUID], max_attempts: int) -> int:
    """Jobs that used up their attempts and are not held by a live worker end as failed."""
    now = utcnow()
    return _update_job(
        session,
        col(Job.id).in_(job_ids),
        col(Job.attempts) >= max_attempts,
        _unheld(now),
        status=JobStatus.failed,
        error_code="too_many_attempts",
        error_message=f"The job was started {max_attempts} times without finishing "
        "(its worker stopped each time); it will not be tried again automatically.",
        finished_at=now,
        lease_token=None,
        lease_expires_at=None,
    )


def renew_lease(session: Session, claim: Claim, lease_seconds: float) -> bool:
    """Extend the claim; False when the job was canceled or reclaimed meanwhile."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    params = {**_claim_params(claim), "expires": expires}
    return _execute_update(session, _RENEW, params, commit=True) == 1


def fail_job(session: Session, claim: Claim, code: str, message: str) -> bool:
    """Mark the claimed job failed with a stable code and a human message."""
    params = {**_claim_params(claim), "code": code, "message": message, "now": utcnow()}
    return _execute_update(session, _FAIL, params, commit=True) == 1


def mark_succeeded(session: Session, claim: Claim) -> bool:
    """Within the caller's transaction: running -> succeeded. The caller commits or rolls back."""
    params = {**_claim_params(claim), "now": utcnow()}
    return _execute_update(session, _SUCCEED, params, commit=False) == 1


def cancel_job(session: Session, job_id: uuid.UUID) -> bool:
    """queued/running -> canceled. A canceled job never gets a result: its worker's claim is void."""
    return (
        _update_job(
            session,
            col(Job.id) == job_id,
            col(Job.status).in_([JobStatus.queued, JobStatus.running]),
            status=JobStatus.canceled,
            finished_at=utcnow(),
            lease_token=None,
            lease_expires_at=None,
        )
        == 1
    )


def requeue_job(session: Session, job_id: uuid.UUID) -> bool:
    """failed/canceled -> queued, with a fresh count of attempts, ready to be published. A
    provider_batch job forgets the errors its provider gave, to ask again."""
    session.connection().execute(
        sa.delete(LLMRequest).where(
            col(LLMRequest.job_id) == job_id,
            col(LLMRequest.error).is_not(None),
            sa.select(1)
            .where(
                col(Job.id) == job_id,
                col(Job.status).in_([JobStatus.failed, JobStatus.canceled]),
            )
            .exists(),
        )
    )
    return (
        _update_job(
            session,
            col(Job.id) == job_id,
            col(Job.status).in_([JobStatus.failed, JobStatus.canceled]),
            status=JobStatus.queued,
            attempts=0,
            error_code=None,
            error_message=None,
            started_at=None,
            finished_at=None,
            published_at=None,
            parked_at=None,
            lease_token=None,
            lease_expires_at=None,
        )
        == 1
    )


def forget_publications(session: Session, published_before: datetime) -> int:
    """Mark the queued jobs published before `published_before` unpublished, so the sweeper
    publishes them again: the broker lost the messages it held then (a duplicate would be
    harmless: only one run claims)."""
    return _update_job(
        session,
        col(Job.status) == JobStatus.queued,
        col(Job.published_at) < published_before,
        published_at=None,
    )


@dataclass
class Reclaimed:
    reclaimed: int = 0  # running jobs whose worker died, queued again
    exhausted: int = 0  # jobs failed with too_many_attempts
    # the expired jobs it looked at, each now queued again, failed, or renewed by its worker
    # meanwhile: whoever waits on them should read them again
    expired: list[uuid.UUID] = field(default_factory=list)


def reclaim_expired(session: Session, *, max_attempts: int, batch: int = 200) -> Reclaimed:
    """Queue again the running jobs whose worker died (their lease expired), or fail them when
    they used up their attempts. Safe to run anywhere, any number of times at once (every step
    is a conditional update)."""
    report = Reclaimed()
    now = utcnow()
    expired = list(
        session.exec(
            select(Job.id)
            .where(col(Job.status) == JobStatus.running, col(Job.lease_expires_at) < now)
            .limit(batch)
        )
    )
    if expired:
        report.expired = expired
        report.exhausted = fail_exhausted(session, expired, max_attempts)
        report.reclaimed = _update_job(
            session,
            col(Job.id).in_(expired),
            col(Job.status) == JobStatus.running,
            col(Job.lease_expires_at) < now,
            col(Job.attempts) < max_attempts,
            status=JobStatus.queued,
            published_at=None,
            lease_token=None,
            lease_expires_at=None,
        )
    return report


def publish_waiting(session: Session, *, republish_after: float, batch: int = 200) -> int:
    """Publish the queued jobs nobody published (the broker was down when they came in), or
    published long ago and never claimed (a lost message); how many were published. A grace
    period leaves the API's own publish alone. Safe to run in several workers at once."""
    now = utcnow()
    unpublished = sa.and_(
        col(Job.published_at).is_(None), col(Job.created_at) < now - PUBLISH_GRACE
    )
    stale = col(Job.published_at) < now - timedelta(seconds=republish_after)
    waiting = session.execute(
        sa.select(
            col(Job.id),
            col(Job.attempts),
            col(Article.title),
            col(Article.source),
            col(Article.url),
        )
        .join(Article, col(Article.id) == col(Job.article_id))
        .where(
            col(Job.status) == JobStatus.queued,
            col(Job.parked_at).is_(None),  # waiting for its provider's batch, not a broker
            sa.or_(unpublished, stale),
        )
        .limit(batch)
    ).all()
    published = 0
    for job_id, attempts, title, source, url in waiting:
        # reserve the job first, so that sweepers of several workers publish it once
        reserved = _update_job(
            session,
            col(Job.id) == job_id,
            col(Job.status) == JobStatus.queued,
            sa.or_(unpublished, stale),
            published_at=utcnow(),
        )
        if reserved != 1:
            continue
        if not send_job_task(job_id, task_label(title, source, url), attempts):
            _update_job(session, col(Job.id) == job_id, published_at=None)
            break  # the broker is down: the next sweep tries again
        published += 1
    return published


def job_public(session: Session, job: Job, *, with_result: bool = True) -> JobPublic:
    public = JobPublic.model_validate(job, from_attributes=True)
    if job.status == JobStatus.failed and job.error_code:
        public.error = JobError(code=job.error_code, message=job.error_message or "")
    if with_result and job.status == JobStatus.succeeded:
        public.result = result_of_job(session.connection(), job.id)
    return public
