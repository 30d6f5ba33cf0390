"""A job's run: claim it, produce its result (or reuse a stored one), store it, or record why it
failed. The Celery task is a thin wrapper around `run_job`."""

import hashlib
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from kernel.config import Settings
from kernel.db import autocommit_scope, session_scope
from kernel.events import announce_job
from kernel.jobs import Claim, claim_job, fail_job, mark_succeeded
from kernel.metrics import JOBS_FINISHED
from kernel.models import Article, Batch, BatchMode, Job
from kernel.provider_batches import load_answers, park_job
from kernel.results import reusable_result, store_result
from kernel.schemas import ResultPublic, UsagePublic
from kernel.stories import story_job_ended
from worker.drafting import labels
from worker.errors import PipelineError
from worker.lease import LeaseKeeper
from worker.llm import AnswerBook, AwaitingAnswers, Deadline, answering_from
from worker.pipeline import analyse
from worker.prepare import SourceArticle, cleaning_figures, prepare

log = structlog.get_logger(__name__)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Built once with bind parameters: building a statement and its cache key costs more CPU than
# executing it. Core rather than the ORM: nothing a job reads is changed through a session.
_LOAD_JOB = (
    sa.select(
        col(Job.article_id),
        col(Job.callback_url),
        col(Article.input_kind),
        col(Article.raw_text),
        col(Article.url),
        col(Article.title),
        col(Article.source),
        col(Article.language),
        col(Job.batch_id),
        col(Batch.mode),
    )
    .join_from(Job, Article, col(Article.id) == col(Job.article_id))
    .outerjoin(Batch, col(Batch.id) == col(Job.batch_id))
    .where(col(Job.id) == sa.bindparam("job_id"))
)
# SET: the columns given with the statement's parameters (clean_text, content_hash, raw_text)
_UPDATE_ARTICLE = sa.update(Article).where(col(Article.id) == sa.bindparam("article"))


def store(
    session: Session, claim: Claim, article_id: uuid.UUID, result: ResultPublic, text_hash: str
) -> bool:
    """The store stage: write the result and mark the job succeeded in one transaction.

    False (and nothing written) when the job is no longer running: canceled meanwhile, or a
    duplicate delivery already finished it. The unique job_id on `result` backs this up.
    """
    if not mark_succeeded(session, claim):
        session.rollback()
        return False
    store_result(
        session.connection(),
        job_id=claim.job_id,
        article_id=article_id,
        content_hash=text_hash,
        result=result,
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


@dataclass(frozen=True)
class ClaimedJob:
    """What a run needs of the job it claimed, detached from any database session."""

    claim: Claim
    article_id: uuid.UUID
    callback_url: str | None
    article: SourceArticle
    provider_batch: uuid.UUID | None = None  # its batch, when answered by the provider's batches


def _load_claimed(job_id: uuid.UUID, settings: Settings, task_id: str | None) -> ClaimedJob | None:
    # no transaction: the claim is one atomic UPDATE, and nothing is held while the LLM works
    with autocommit_scope() as session:
        claim = claim_job(
            session,
            job_id,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.max_attempts,
            task_id=task_id,
        )
        if claim is None:
            return None
        row = session.connection().execute(_LOAD_JOB, {"job_id": job_id}).one()
    article = SourceArticle(
        input_kind=row.input_kind,
        raw_text=row.raw_text,
        url=row.url,
        title=row.title,
        source=row.source,
        language=row.language,
    )
    provider_batch = row.batch_id if row.mode == BatchMode.provider_batch else None
    return ClaimedJob(claim, row.article_id, row.callback_url, article, provider_batch)


def produce(job: ClaimedJob, settings: Settings, deadline: Deadline) -> tuple[ResultPublic, str]:
    """Prepare the article, then reuse a stored result for its clean text or analyse it."""
    article = job.article
    prepared = prepare(article, settings)
    text_hash = content_hash(prepared.cleaned.text)
    cleaned: dict[str, Any] = {
        "article": job.article_id,
        "clean_text": prepared.cleaned.text,
        "content_hash": text_hash,
    }
    if prepared.fetched is not None:
        cleaned["raw_text"] = prepared.fetched
    with autocommit_scope() as session:
        session.connection().execute(_UPDATE_ARTICLE, cleaned)
        label = labels(settings)
        reused = reusable_result(
            session.connection(), text_hash, label.provider, label.model, label.prompt_version
        )
    if reused is not None:
        # the same clean text through the same provider, model and prompt: no LLM call
        log.info("result_reused")
        cleaning = cleaning_figures(prepared.cleaned)
        usage = UsagePublic(prompt_tokens=0, completion_tokens=0, llm_calls=0)
        return reused.model_copy(update={"cleaning": cleaning, "usage": usage}), text_hash
    return analyse(article, prepared.cleaned, settings, deadline), text_hash


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, for the task to report to Celery (and so to Flower)."""

    failure: PipelineError | None = None  # this run failed the job: its code and message
    webhook_due: bool = False  # this run ended the job, and the job has a callback URL


def run_job(
    job_id: uuid.UUID, settings: Settings, leases: LeaseKeeper, task_id: str | None = None
) -> RunOutcome:
    """Run one job to `succeeded` or `failed`, its lease kept by `leases`. A job that cannot be
    claimed (finished, canceled, held by a live worker, a duplicate delivery) is left alone."""
    try:
        job = _load_claimed(job_id, settings, task_id)
    finally:
        # now running; or not claimed, usually a duplicate delivery, but the claim may have
        # failed the job for too many attempts; or claimed and then the read failed: either
        # way its waiters read it again
        announce_job(settings, job_id)
    if job is None:
        log.info("job_not_claimed")
        return RunOutcome()
    log.info("job_started", provider=settings.provider, attempt=job.claim.attempt)
    try:
        return _run_claimed(job, settings, leases)
    finally:
        # finished, or given up to a canceler or another worker: either way, waiters read again
        announce_job(settings, job_id)
        # the last job of a story to end starts its comparison
        story_job_ended(settings, job_id)


def _run_claimed(job: ClaimedJob, settings: Settings, leases: LeaseKeeper) -> RunOutcome:
    claim = job.claim
    with leases.hold(claim, settings.job_lease_seconds) as lost:
        deadline = Deadline(settings.job_time_limit, lost)
        book = _answer_book(job)
        try:
            with answering_from(book) if book is not None else nullcontext():
                result, text_hash = produce(job, settings, deadline)
            with session_scope() as session:
                stored_ok = store(session, claim, job.article_id, result, text_hash)
        except AwaitingAnswers:
            assert book is not None and job.provider_batch is not None
            with session_scope() as session:
                parked = park_job(session, claim, job.provider_batch, book.asked)
            log.info("job_parked" if parked else "job_not_parked", requests=len(book.asked))
            return RunOutcome()
        except PipelineError as exc:
            with autocommit_scope() as session:
                ended = fail_job(session, claim, exc.code, exc.message)
            if ended:
                JOBS_FINISHED.labels("failed", exc.code).inc()
            log.warning("job_failed", code=exc.code)
            return _failed(exc, ended, job)
        except Exception as exc:
            log.exception("job_crashed", error=type(exc).__name__)
            crash = PipelineError(
                "internal_error", "An internal error stopped the job; it has been logged."
            )
            with autocommit_scope() as session:
                ended = fail_job(session, claim, crash.code, crash.message)
            if ended:
                JOBS_FINISHED.labels("failed", crash.code).inc()
            return _failed(crash, ended, job)
    if stored_ok:
        JOBS_FINISHED.labels("succeeded", "").inc()
    log.info(
        "job_finished" if stored_ok else "job_result_discarded",
        quotes=result.grounding.quotes,
        verified=result.grounding.verified,
        llm_calls=result.usage.llm_calls,
    )
    return RunOutcome(webhook_due=stored_ok and job.callback_url is not None)


def _answer_book(job: ClaimedJob) -> AnswerBook | None:
    """A provider_batch job's answers so far; None for a job that calls its provider live."""
    if job.provider_batch is None:
        return None
    with autocommit_scope() as session:
        return AnswerBook(load_answers(session, job.claim.job_id))


def _failed(error: PipelineError, ended: bool, job: ClaimedJob) -> RunOutcome:
    if not ended:  # canceled meanwhile, or taken over by another worker: not this run's failure
        return RunOutcome()
    return RunOutcome(failure=error, webhook_due=job.callback_url is not None)
