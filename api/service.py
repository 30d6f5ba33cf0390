"""What the routes do, as plain functions over a session (no FastAPI types here)."""

import uuid

from sqlmodel import Session

from api.errors import Problem
from api.schemas import ArticleCreate, ArticlePublic
from evenhand.jobs import job_public, latest_result, load_result, publish_job
from evenhand.models import ApiKey, Article, Job
from evenhand.schemas import JobPublic


def submit_article(session: Session, owner: ApiKey, payload: ArticleCreate, max_chars: int) -> Job:
    """Store the article and its job, commit, then publish the job's task."""
    if payload.url is not None:
        raise Problem(422, "URL input is not accepted yet; send the article as 'text' or 'html'.")
    kind, raw = ("html", payload.html) if payload.html is not None else ("text", payload.text)
    assert raw is not None
    if not raw.strip():
        raise Problem(422, f"The article's '{kind}' is empty; send the article's text.")
    if len(raw) > max_chars:
        raise Problem(413, f"The article has {len(raw)} characters; the limit is {max_chars}.")
    assert owner.id is not None
    article = Article(
        owner_id=owner.id,
        input_kind=kind,
        raw_text=raw,
        title=payload.title,
        source=payload.source,
        url=payload.url,
        language=payload.language,
        extra=payload.meta,
    )
    job = Job(article_id=article.id, owner_id=owner.id)
    session.add(article)
    session.add(job)
    session.commit()  # the job is safe before anything is published
    session.refresh(job)
    publish_job(session, job)
    return job


def get_owned_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.owner_id != owner.id:
        raise Problem(404, f"No job {job_id} for this API key.")
    return job


def read_job(session: Session, owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    return job_public(session, get_owned_job(session, owner, job_id))


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
