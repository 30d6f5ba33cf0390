"""A provider_batch batch's life in the database.

Its jobs run as every job does, but their LLM calls are answered from `llm_request` rows. A run
that needs an answer not there yet records the request and parks its job (queued, `parked_at`
set, the attempt given back). Once none of the batch's jobs is running or waiting to run, the
sweeper sends every unsent request as one round to the provider's Batch API
(worker.provider_batches), polls it, stores each answer or error on its request, and unparks the
jobs whose requests are all answered: they are published again and replay their answers, asking
the next round only what depends on them (a repair round, the support check).

Like a job's, every transition is a conditional UPDATE or a unique insert, so several sweepers
racing cannot send a round twice or lose one.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from kernel.jobs import Claim
from kernel.models import Batch, BatchMode, Job, JobStatus, LLMRequest, ProviderBatch, utcnow

# the provider's statuses after which a batch changes no more
TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider said to one request: the completion's JSON body, or an error."""

    answer: dict[str, Any] | None
    error: dict[str, Any] | None


def load_answers(session: Session, job_id: uuid.UUID) -> dict[str, ProviderAnswer]:
    """The job's requests the provider has answered, by request key."""
    rows = session.execute(
        sa.select(col(LLMRequest.key), col(LLMRequest.answer), col(LLMRequest.error)).where(
            col(LLMRequest.job_id) == job_id,
            sa.or_(col(LLMRequest.answer).is_not(None), col(LLMRequest.error).is_not(None)),
        )
    ).all()
    return {key: ProviderAnswer(answer, error) for key, answer, error in rows}


def park_job(
    session: Session, claim: Claim, batch_id: uuid.UUID, asked: dict[str, dict[str, Any]]
) -> bool:
    """Record what the run asked (request key -> body) and give the job back, queued and parked,
    with its attempt returned: waiting for a provider is not a failed try. False (nothing
    written) when the job is no longer this run's: canceled, or reclaimed."""
    parked = session.connection().execute(
        sa.update(Job)
        .where(
            col(Job.id) == claim.job_id,
            col(Job.status) == JobStatus.running,
            col(Job.lease_token) == claim.token,
        )
        .values(
            status=JobStatus.queued,
            attempts=Job.attempts - 1,
            parked_at=utcnow(),
            lease_token=None,
            lease_expires_at=None,
        )
    )
    if parked.rowcount != 1:
        session.rollback()
        return False
    known = set(
        session.exec(
            select(LLMRequest.key).where(
                col(LLMRequest.job_id) == claim.job_id, col(LLMRequest.key).in_(list(asked))
            )
        )
    )
    session.add_all(
        LLMRequest(batch_id=batch_id, job_id=claim.job_id, key=key, body=body)
        for key, body in asked.items()
        if key not in known
    )
    session.commit()
    return True


def _waiting_to_run() -> sa.ColumnElement[bool]:
    """Jobs (of the enclosing statement's batch) that may still ask for more: running, or queued
    and not parked."""
    return sa.or_(
        col(Job.status) == JobStatus.running,
        sa.and_(col(Job.status) == JobStatus.queued, col(Job.parked_at).is_(None)),
    )


def _unsent(batch_id: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """Requests of `batch_id` not yet in a round, of jobs still parked (not canceled)."""
    parked_job = (
        sa.select(1)
        .where(
            col(Job.id) == col(LLMRequest.job_id),
            col(Job.status) == JobStatus.queued,
            col(Job.parked_at).is_not(None),
        )
        .exists()
    )
    return (
        col(LLMRequest.batch_id) == batch_id,
        col(LLMRequest.provider_batch_id).is_(None),
        col(LLMRequest.answer).is_(None),
        col(LLMRequest.error).is_(None),
        parked_job,
    )


def batches_ready(session: Session, limit: int = 20) -> list[uuid.UUID]:
    """provider_batch batches with unsent requests and no job that could still add to them."""
    busy = sa.select(1).where(col(Job.batch_id) == col(Batch.id), _waiting_to_run()).exists()
    unsent = sa.select(1).where(*_unsent(col(Batch.id))).exists()
    return list(
        session.exec(
            select(Batch.id)
            .where(col(Batch.mode) == BatchMode.provider_batch, unsent, ~busy)
            .limit(limit)
        )
    )


def reserve_round(session: Session, batch_id: uuid.UUID) -> ProviderBatch | None:
    """A new round holding every unsent request of the batch; None when another sweeper took
    them first (or there are none)."""
    last = session.exec(
        select(sa.func.max(ProviderBatch.round)).where(col(ProviderBatch.batch_id) == batch_id)
    ).one()
    round_ = ProviderBatch(batch_id=batch_id, round=(last or 0) + 1, checked_at=utcnow())
    session.add(round_)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return None
    taken = session.connection().execute(
        sa.update(LLMRequest)
        .where(*_unsent(batch_id))
        .values(provider_batch_id=round_.id, attempts=LLMRequest.attempts + 1)
    )
    if taken.rowcount == 0:
        session.rollback()
        return None
    round_.requests = taken.rowcount
    session.commit()
    return round_


def round_requests(session: Session, round_id: uuid.UUID) -> list[tuple[uuid.UUID, dict]]:
    """The (custom id, body) of every request a round carries."""
    rows = session.execute(
        sa.select(col(LLMRequest.id), col(LLMRequest.body))
        .where(col(LLMRequest.provider_batch_id) == round_id)
        .order_by(col(LLMRequest.created_at), col(LLMRequest.id))
    ).all()
    return [(request_id, body) for request_id, body in rows]


def rounds_due(session: Session, poll_seconds: float, limit: int = 20) -> list[ProviderBatch]:
    """Rounds in flight (or not yet sent) last looked at `poll_seconds` ago or more, each
    reserved for this caller by moving its `checked_at` (so one sweeper looks at a time)."""
    now = utcnow()
    stale = col(ProviderBatch.checked_at) < now - timedelta(seconds=poll_seconds)
    candidates = session.exec(
        select(ProviderBatch.id)
        .where(col(ProviderBatch.status).not_in(list(TERMINAL)), stale)
        .limit(limit)
    ).all()
    due = []
    for round_id in candidates:
        reserved = session.connection().execute(
            sa.update(ProviderBatch)
            .where(col(ProviderBatch.id) == round_id, stale)
            .values(checked_at=now)
        )
        session.commit()
        if reserved.rowcount == 1 and (round_ := session.get(ProviderBatch, round_id)):
            due.append(round_)
    return due


def record_sent(
    session: Session, round_id: uuid.UUID, provider_id: str, file_id: str, status: str
) -> None:
    session.connection().execute(
        sa.update(ProviderBatch)
        .where(col(ProviderBatch.id) == round_id)
        .values(provider_id=provider_id, input_file_id=file_id, status=status, checked_at=utcnow())
    )
    session.commit()


def record_status(session: Session, round_id: uuid.UUID, status: str) -> None:
    session.connection().execute(
        sa.update(ProviderBatch).where(col(ProviderBatch.id) == round_id).values(status=status)
    )
    session.commit()


def record_answers(
    session: Session,
    round_id: uuid.UUID,
    answers: dict[uuid.UUID, dict[str, Any]],
    errors: dict[uuid.UUID, dict[str, Any]],
    retryable: dict[uuid.UUID, dict[str, Any]],
    max_sends: int,
) -> None:
    """Store each line the provider gave back on its request (only requests of this round). A
    retryable error sends its request again in the next round, up to `max_sends` rounds; then
    it stays as the request's error."""
    mine = col(LLMRequest.provider_batch_id) == round_id
    update = sa.update(LLMRequest)
    connection = session.connection()
    for request_id, answer in answers.items():
        connection.execute(
            update.where(col(LLMRequest.id) == request_id, mine).values(answer=answer, error=None)
        )
    if retryable:
        connection.execute(
            update.where(
                col(LLMRequest.id).in_(list(retryable)),
                mine,
                col(LLMRequest.attempts) < max_sends,
            ).values(provider_batch_id=None)
        )
    for request_id, error in (retryable | errors).items():
        connection.execute(update.where(col(LLMRequest.id) == request_id, mine).values(error=error))
    session.commit()


def finish_round(
    session: Session,
    round_: ProviderBatch,
    status: str,
    unanswered: dict[str, Any],
    reason: str | None,
) -> list[uuid.UUID]:
    """End the round: requests it left without an answer get `unanswered` as their error; then
    unpark the batch's jobs that have every request answered, for the sweeper to publish. The
    ids of the jobs unparked."""
    connection = session.connection()
    connection.execute(
        sa.update(LLMRequest)
        .where(
            col(LLMRequest.provider_batch_id) == round_.id,
            col(LLMRequest.answer).is_(None),
            col(LLMRequest.error).is_(None),
        )
        .values(error=unanswered)
    )
    connection.execute(
        sa.update(ProviderBatch)
        .where(col(ProviderBatch.id) == round_.id)
        .values(status=status, error=reason, finished_at=utcnow())
    )
    session.commit()
    return unpark_answered(session, round_.batch_id)


def unpark_answered(session: Session, batch_id: uuid.UUID) -> list[uuid.UUID]:
    """Parked jobs of the batch with nothing left unanswered go back to be published."""
    open_request = (
        sa.select(1)
        .where(
            col(LLMRequest.job_id) == col(Job.id),
            col(LLMRequest.answer).is_(None),
            col(LLMRequest.error).is_(None),
            # an unsent request of a parked job is sent by the next round, not answered
        )
        .exists()
    )
    ready = sa.and_(
        col(Job.batch_id) == batch_id,
        col(Job.status) == JobStatus.queued,
        col(Job.parked_at).is_not(None),
        ~open_request,
    )
    job_ids = list(session.exec(select(Job.id).where(ready)))
    if job_ids:
        session.connection().execute(
            sa.update(Job)
            .where(col(Job.id).in_(job_ids), ready)
            .values(parked_at=None, published_at=None)
        )
    session.commit()
    return job_ids
