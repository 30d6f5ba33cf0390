"""What the routes do, as plain functions over a session (no FastAPI types here)."""

import base64
import binascii
import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.errors import Problem
from api.group_commit import GroupCommit, Row
from api.job_cache import JobCache
from api.limits import DailyUsage
from api.schemas import (
    ArticleAccepted,
    ArticleCreate,
    ArticlePublic,
    BatchCreate,
    BatchPublic,
    JobPage,
    ProviderRoundPublic,
)
from kernel.config import Settings
from kernel.events import announce_job
from kernel.jobs import (
    cancel_job,
    job_public,
    publish_jobs,
    requeue_job,
    task_label,
)
from kernel.models import (
    FINISHED_STATUSES,
    ApiKey,
    Article,
    Batch,
    BatchMode,
    IdempotencyRecord,
    Job,
    JobStatus,
    ProviderBatch,
    row_values,
)
from kernel.results import latest_result_of_article
from kernel.schemas import JobPublic


def json_depth(value: object) -> int:
    """How deeply a parsed JSON value nests (pydantic's parser already stops at 200 levels)."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def request_hash(payload: ArticleCreate) -> str:
    return hashlib.sha256(payload.model_dump_json(by_alias=True).encode()).hexdigest()


def replay(session: Session, owner: ApiKey, key: str, payload: ArticleCreate) -> Job | None:
    """The job of an earlier request with this Idempotency-Key, if the body is the same."""
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner_id == owner.id, IdempotencyRecord.key == key
        )
    ).first()
    if record is None:
        return None
    if record.request_hash != request_hash(payload):
        raise Problem(
            422,
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new article.",
        )
    return session.get(Job, record.job_id)


def accepted(job: Job) -> ArticleAccepted:
    # a replay answers exactly as the first request did: queued
    return ArticleAccepted(job_id=job.id, article_id=job.article_id, status=JobStatus.queued)


async def submit_article(
    session: Session,
    owner: ApiKey,
    payload: ArticleCreate,
    settings: Settings,
    usage: DailyUsage,
    groups: GroupCommit,
    idempotency_key: str | None = None,
) -> tuple[ArticleAccepted, bool]:
    """Store the article and its job (committed with the submits that arrive meanwhile), then
    publish the job's task.

    Returns the accepted job and whether it is a replay of an earlier request with the same
    Idempotency-Key (nothing new is stored or published then).

    On the event loop: a submit that needs no database read of its own (no Idempotency-Key, a
    quota reading in memory) waits for its group without a thread; reads go to the thread pool.
    """
    if idempotency_key and (
        earlier := await run_in_threadpool(replay, session, owner, idempotency_key, payload)
    ):
        return accepted(earlier), True
    await usage.enforce_async(session, owner, settings, new_jobs=1)
    article, job = new_job(owner, payload, settings)
    rows: list[Row] = [(Article, article), (Job, job)]
    if idempotency_key:
        record = row_values(
            IdempotencyRecord,
            owner_id=owner.id,
            key=idempotency_key,
            request_hash=request_hash(payload),
            job_id=job["id"],
        )
        rows.append((IdempotencyRecord, record))
    answer = ArticleAccepted(job_id=job["id"], article_id=article["id"], status=JobStatus.queued)
    try:
        await groups.write_async(rows, job["id"], submission_label(payload))  # once committed
    except IntegrityError:
        # a concurrent request with the same key won the race: answer as it did
        if idempotency_key and (
            earlier := await run_in_threadpool(replay, session, owner, idempotency_key, payload)
        ):
            return accepted(earlier), True
        raise
    return answer, False


def add_job(
    session: Session,
    owner: ApiKey,
    payload: ArticleCreate,
    settings: Settings,
    batch_id: uuid.UUID | None = None,
) -> Job:
    """Check one article and add it with its job to the session (the caller commits)."""
    article, job = new_job(owner, payload, settings, batch_id)
    session.add(Article(**article))
    added = Job(**job)
    session.add(added)
    return added


def new_job(
    owner: ApiKey,
    payload: ArticleCreate,
    settings: Settings,
    batch_id: uuid.UUID | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One article, checked, and its job: their rows' values, not yet stored."""
    kind, raw = next(
        (k, v)
        for k, v in (("text", payload.text), ("html", payload.html), ("url", payload.url))
        if v is not None
    )
    if kind != "url" and not raw.strip():
        raise Problem(422, f"The article's '{kind}' is empty; send the article's text.")
    if len(raw) > settings.max_article_chars:
        raise Problem(
            413,
            f"The article has {len(raw)} characters; the limit is {settings.max_article_chars}.",
        )
    if json_depth(payload.meta) > settings.max_json_depth:
        raise Problem(
            422,
            f"'metadata' is nested deeper than {settings.max_json_depth} levels; "
            "flatten it (EVENHAND_MAX_JSON_DEPTH sets the limit).",
        )
    assert owner.id is not None
    article = row_values(
        Article,
        owner_id=owner.id,
        input_kind=kind,
        raw_text="" if kind == "url" else raw,
        title=payload.title,
        source=payload.source,
        url=payload.url,
        language=payload.language,
        extra=payload.meta,
    )
    job = row_values(
        Job,
        article_id=article["id"],
        owner_id=owner.id,
        batch_id=batch_id,
        callback_url=payload.callback_url,
    )
    return article, job


def submission_label(payload: ArticleCreate) -> str | None:
    """What Flower shows beside the job id: the title, source or URL, never the article."""
    return task_label(payload.title, payload.source, payload.url)


def submit_batch(
    session: Session, owner: ApiKey, payload: BatchCreate, settings: Settings, usage: DailyUsage
) -> tuple[Batch, list[Job]]:
    """All articles and their jobs in one transaction (all or none), then publish each."""
    if len(payload.articles) > settings.max_batch:
        raise Problem(
            413,
            f"The batch has {len(payload.articles)} articles; the limit is {settings.max_batch}: "
            "split it into several batches.",
        )
    if payload.mode == BatchMode.provider_batch and settings.provider != "openai":
        raise Problem(
            422,
            'A "provider_batch" batch goes through an LLM provider\'s Batch API, and this '
            "server runs the offline extractive provider: set OPENAI_API_KEY (or "
            'OPENAI_BASE_URL) on the API and the workers, or submit with "mode": "live".',
        )
    usage.enforce(session, owner, settings, new_jobs=len(payload.articles))
    assert owner.id is not None
    batch = Batch(owner_id=owner.id, mode=payload.mode)
    session.add(batch)
    jobs = []
    for index, article in enumerate(payload.articles):
        try:
            jobs.append(add_job(session, owner, article, settings, batch_id=batch.id))
        except Problem as problem:
            session.rollback()
            problem.detail = f"articles[{index}]: {problem.detail}"
            raise
    job_ids = [job.id for job in jobs]
    labels = {
        job.id: submission_label(article)
        for job, article in zip(jobs, payload.articles, strict=True)
    }
    session.commit()
    publish_jobs(job_ids, labels)
    return batch, jobs


def read_batch(session: Session, owner: ApiKey, batch_id: uuid.UUID) -> BatchPublic:
    batch = session.get(Batch, batch_id)
    if batch is None or batch.owner_id != owner.id:
        raise Problem(404, f"No batch {batch_id} for this API key.")
    jobs = list(
        session.exec(
            select(Job).where(Job.batch_id == batch.id).order_by(col(Job.created_at), col(Job.id))
        )
    )
    counts = {status.value: 0 for status in JobStatus}
    for job in jobs:
        counts[job.status] += 1
    rounds = session.exec(
        select(ProviderBatch)
        .where(ProviderBatch.batch_id == batch.id)
        .order_by(col(ProviderBatch.round))
    )
    return BatchPublic(
        id=batch.id,
        created_at=batch.created_at,
        mode=batch.mode,
        total=len(jobs),
        counts=counts,
        finished=all(job.status in FINISHED_STATUSES for job in jobs),
        jobs=[
            ArticleAccepted(job_id=job.id, article_id=job.article_id, status=job.status)
            for job in jobs
        ],
        provider_batches=[
            ProviderRoundPublic.model_validate(round_, from_attributes=True) for round_ in rounds
        ],
    )


def no_such_job(job_id: uuid.UUID) -> Problem:
    # the same answer whether the job does not exist or belongs to another key
    return Problem(404, f"No job {job_id} for this API key.")


def get_owned_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.owner_id != owner.id:
        raise no_such_job(job_id)
    return job


def read_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    return job_public(session, get_owned_job(session, owner, job_id))


def _transition(
    session: Session,
    owner: ApiKey,
    job_id: uuid.UUID,
    settings: Settings,
    cache: JobCache,
    move: Callable[[Session, uuid.UUID], bool],
    allowed: str,
    done: str,
) -> Job:
    """Apply a status change to the caller's job; 409 when its status does not allow it."""
    job = get_owned_job(session, owner, job_id)
    moved = move(session, job.id)
    session.refresh(job)
    if not moved:
        raise Problem(409, f"The job is {job.status}; only a {allowed} job can be {done}.")
    # this process's cache at once (the caller's next read must see the change), the other
    # API processes through the announcement
    cache.forget(job.id)
    announce_job(settings, job.id)
    return job


def cancel(
    session: Session, owner: ApiKey, job_id: uuid.UUID, settings: Settings, cache: JobCache
) -> JobPublic:
    job = _transition(
        session, owner, job_id, settings, cache, cancel_job, "queued or running", "canceled"
    )
    return job_public(session, job)


def retry(
    session: Session, owner: ApiKey, job_id: uuid.UUID, settings: Settings, cache: JobCache
) -> JobPublic:
    job = _transition(
        session, owner, job_id, settings, cache, requeue_job, "failed or canceled", "retried"
    )
    # the answer is the job as queued: a worker may take it the moment it is published
    queued = job_public(session, job)
    article = session.get(Article, job.article_id)
    label = task_label(article.title, article.source, article.url) if article else None
    publish_jobs([job.id], {job.id: label})
    return queued


def read_article(session: Session, owner: ApiKey, article_id: uuid.UUID) -> ArticlePublic:
    article = session.get(Article, article_id)
    if article is None or article.owner_id != owner.id:
        raise Problem(404, f"No article {article_id} for this API key.")
    result = latest_result_of_article(session.connection(), article.id)
    return ArticlePublic.model_validate(
        article.model_dump(include=set(ArticlePublic.model_fields) - {"meta", "result"})
        | {"metadata": article.extra, "result": result}
    )


def encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(
            422, "The cursor is not valid; pass the next_cursor of an earlier page."
        ) from None


def list_jobs(
    session: Session, owner: ApiKey, status: JobStatus | None, cursor: str | None, limit: int
) -> JobPage:
    """Keyset pagination on (created_at, id): no OFFSET scans, one query per page."""
    query = select(Job).where(Job.owner_id == owner.id)
    if status is not None:
        query = query.where(Job.status == status)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(col(Job.created_at), col(Job.id)) < (created_at, job_id))
    query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    jobs = list(session.exec(query))
    page = jobs[:limit]
    items = [job_public(session, job, with_result=False) for job in page]
    return JobPage(items=items, next_cursor=encode_cursor(page[-1]) if len(jobs) > limit else None)
