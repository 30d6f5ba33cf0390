"""What the routes do, as plain functions over a session (no FastAPI types here)."""

import hashlib
import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.errors import Problem
from api.schemas import ArticleCreate, ArticlePublic
from evenhand.jobs import (
    cancel_job,
    job_public,
    latest_result,
    load_result,
    publish_job,
    requeue_job,
)
from evenhand.models import ApiKey, Article, IdempotencyRecord, Job
from evenhand.schemas import JobPublic


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


def submit_article(
    session: Session,
    owner: ApiKey,
    payload: ArticleCreate,
    max_chars: int,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Store the article and its job, commit, then publish the job's task.

    Returns the job and whether it is a replay of an earlier request with the same
    Idempotency-Key (nothing new is stored or published then).
    """
    if idempotency_key and (earlier := replay(session, owner, idempotency_key, payload)):
        return earlier, True
    kind, raw = next(
        (k, v)
        for k, v in (("text", payload.text), ("html", payload.html), ("url", payload.url))
        if v is not None
    )
    if kind != "url" and not raw.strip():
        raise Problem(422, f"The article's '{kind}' is empty; send the article's text.")
    if len(raw) > max_chars:
        raise Problem(413, f"The article has {len(raw)} characters; the limit is {max_chars}.")
    assert owner.id is not None
    article = Article(
        owner_id=owner.id,
        input_kind=kind,
        raw_text="" if kind == "url" else raw,
        title=payload.title,
        source=payload.source,
        url=payload.url,
        language=payload.language,
        extra=payload.meta,
    )
    job = Job(article_id=article.id, owner_id=owner.id)
    session.add(article)
    session.add(job)
    if idempotency_key:
        session.flush()  # the job row first: the record refers to it
        session.add(
            IdempotencyRecord(
                owner_id=owner.id,
                key=idempotency_key,
                request_hash=request_hash(payload),
                job_id=job.id,
            )
        )
    try:
        session.commit()  # the job is safe before anything is published
    except IntegrityError:
        # a concurrent request with the same key won the race: answer as it did
        session.rollback()
        if idempotency_key and (earlier := replay(session, owner, idempotency_key, payload)):
            return earlier, True
        raise
    session.refresh(job)
    publish_job(session, job)
    return job, False


def get_owned_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.owner_id != owner.id:
        raise Problem(404, f"No job {job_id} for this API key.")
    return job


def read_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    return job_public(session, get_owned_job(session, owner, job_id))


def cancel(session: Session, owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    job = get_owned_job(session, owner, job_id)
    if not cancel_job(session, job.id):
        session.refresh(job)
        raise Problem(
            409, f"The job is {job.status}; only a queued or running job can be canceled."
        )
    session.refresh(job)
    return job_public(session, job)


def retry(session: Session, owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    job = get_owned_job(session, owner, job_id)
    if not requeue_job(session, job.id):
        session.refresh(job)
        raise Problem(
            409, f"The job is {job.status}; only a failed or canceled job can be retried."
        )
    session.refresh(job)
    publish_job(session, job)
    return job_public(session, job)


def read_article(session: Session, owner: ApiKey, article_id: uuid.UUID) -> ArticlePublic:
    article = session.get(Article, article_id)
    if article is None or article.owner_id != owner.id:
        raise Problem(404, f"No article {article_id} for this API key.")
    result = latest_result(session, article)
    return ArticlePublic(
        **article.model_dump(include=set(ArticlePublic.model_fields) - {"meta", "result"}),
        metadata=article.extra,
        result=load_result(session, result) if result else None,
    )
