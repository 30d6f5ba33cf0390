"""A job's life in the database, the single source of truth for its status.

Every transition is a conditional UPDATE, so two processes racing on one job (a redelivered task,
a cancel during a run) cannot both win.
"""

import uuid

import sqlalchemy as sa
import structlog
from sqlmodel import Session, col, select

from evenhand.celery_app import SUMMARIZE_TASK, celery_app
from evenhand.models import (
    ArgumentPoint,
    Article,
    Evidence,
    Job,
    JobStatus,
    Result,
    utcnow,
)
from evenhand.schemas import (
    ArgumentPointPublic,
    CleaningPublic,
    EvidencePublic,
    GroundingPublic,
    JobError,
    JobPublic,
    LoadedTerm,
    NeutralityPublic,
    ResultPublic,
    UsagePublic,
)

log = structlog.get_logger(__name__)


def publish_job(session: Session, job: Job) -> bool:
    """Send the job's task by name. Call only after the job row is committed.

    Returns False when the broker is unreachable: the job stays `queued` in the database, safe,
    and `published_at` stays empty so it can be published again.
    """
    try:
        celery_app.send_task(SUMMARIZE_TASK, args=[str(job.id)])
    except Exception as exc:  # kombu raises several connection error types
        log.warning("job_publish_failed", job_id=str(job.id), error=type(exc).__name__)
        return False
    session.exec(
        sa.update(Job).where(col(Job.id) == job.id).values(published_at=utcnow())  # type: ignore[call-overload]
    )
    session.commit()
    return True


def claim_job(session: Session, job_id: uuid.UUID) -> bool:
    """Move a queued job to running; False when someone else has it or it was canceled."""
    claimed = session.exec(
        sa.update(Job)  # type: ignore[call-overload]
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.queued)
        .values(status=JobStatus.running, attempts=Job.attempts + 1, started_at=utcnow())
    )
    session.commit()
    return claimed.rowcount == 1


def fail_job(session: Session, job_id: uuid.UUID, code: str, message: str) -> bool:
    """Mark a running job failed with a stable code and a human message."""
    updated = session.exec(
        sa.update(Job)  # type: ignore[call-overload]
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.running)
        .values(
            status=JobStatus.failed,
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
        )
    )
    session.commit()
    return updated.rowcount == 1


def mark_succeeded(session: Session, job_id: uuid.UUID) -> bool:
    """Within the caller's transaction: running -> succeeded. The caller commits or rolls back."""
    updated = session.exec(
        sa.update(Job)  # type: ignore[call-overload]
        .where(col(Job.id) == job_id, col(Job.status) == JobStatus.running)
        .values(
            status=JobStatus.succeeded, finished_at=utcnow(), error_code=None, error_message=None
        )
    )
    return updated.rowcount == 1


def load_result(session: Session, result: Result) -> ResultPublic:
    """The stored result in the shape of the brief, in two queries (points, then evidence)."""
    points = list(
        session.exec(
            select(ArgumentPoint)
            .where(ArgumentPoint.result_id == result.id)
            .order_by(col(ArgumentPoint.position))
        )
    )
    evidence_by_point: dict[int, list[EvidencePublic]] = {p.id: [] for p in points if p.id}
    if evidence_by_point:
        for ev in session.exec(
            select(Evidence)
            .where(col(Evidence.point_id).in_(list(evidence_by_point)))
            .order_by(col(Evidence.point_id), col(Evidence.position))
        ):
            evidence_by_point[ev.point_id].append(
                EvidencePublic(
                    quote=ev.quote, start=ev.start, end=ev.end, verified=ev.verified, score=ev.score
                )
            )
    return ResultPublic(
        article_type=result.article_type,  # type: ignore[arg-type]
        thesis=result.thesis,
        summary=result.summary,
        argument_points=[
            ArgumentPointPublic(
                claim=p.claim,
                speaker=p.speaker,
                premises=p.premises,
                evidence=evidence_by_point.get(p.id or 0, []),
            )
            for p in points
        ],
        loaded_language=[LoadedTerm(**term) for term in result.loaded_language],
        provider=result.provider,
        model=result.model,
        prompt_version=result.prompt_version,
        usage=UsagePublic(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            llm_calls=result.llm_calls,
        ),
        grounding=GroundingPublic(quotes=result.quotes, verified=result.verified),
        cleaning=CleaningPublic(
            chars_in=result.chars_in,
            chars_kept=result.chars_kept,
            lines_removed=result.lines_removed,
        ),
        neutrality=NeutralityPublic(
            summary_loaded_terms=[LoadedTerm(**term) for term in result.summary_loaded_terms]
        ),
    )


def job_public(session: Session, job: Job) -> JobPublic:
    public = JobPublic.model_validate(job, from_attributes=True)
    if job.status == JobStatus.failed and job.error_code:
        public.error = JobError(code=job.error_code, message=job.error_message or "")
    if job.status == JobStatus.succeeded:
        result = session.exec(select(Result).where(Result.job_id == job.id)).first()
        if result is not None:
            public.result = load_result(session, result)
    return public


def latest_result(session: Session, article: Article) -> Result | None:
    return session.exec(
        select(Result)
        .where(Result.article_id == article.id)
        .order_by(col(Result.created_at).desc())
    ).first()
