"""Stories: several articles about one event, each analysed as a normal job, then compared by the
worker (worker/stories.py). The request and response bodies, and what the routes do."""

import base64
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.json_schema import JsonDict
from sqlmodel import Session, col, select

from api.errors import Problem
from api.limits import DailyUsage
from api.schemas import SUBMIT_EXAMPLE, ArticleCreate
from api.service import add_job, decode_cursor, submission_label
from kernel.config import Settings
from kernel.jobs import publish_jobs, task_label
from kernel.models import (
    ApiKey,
    Article,
    Job,
    JobStatus,
    Story,
    StoryArticle,
    StoryStatus,
)
from kernel.schemas import EXAMPLE_STORY_RESULT, JobError, StoryResultPublic, UtcDateTime
from kernel.stories import load_story_result

# --- bodies ---------------------------------------------------------------------------------------


class StoryArticleRef(BaseModel):
    """An article this key submitted before, by its id (its stored result is reused)."""

    model_config = ConfigDict(extra="forbid")

    article_id: uuid.UUID


def _kind(value: Any) -> str:
    return "article_id" if isinstance(value, dict) and "article_id" in value else "article"


StoryItem = Annotated[
    Annotated[ArticleCreate, Tag("article")] | Annotated[StoryArticleRef, Tag("article_id")],
    Discriminator(_kind),
]


class StoryCreate(BaseModel):
    """Articles about one event (2 to EVENHAND_MAX_STORY_ARTICLES): each as for POST
    /v1/articles, or `{"article_id": ...}` of an article submitted before."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Main Street closure",
                    "articles": [
                        SUBMIT_EXAMPLE,
                        {"url": "https://example.com/opinion/main-street"},
                        {"article_id": "8d1f3c3e-1a7b-4c55-b0de-2a9e6b1f7c42"},
                    ],
                }
            ]
        },
    )

    title: str | None = Field(default=None, max_length=1000)
    articles: list[StoryItem] = Field(min_length=2)


class StoryJob(BaseModel):
    article_id: uuid.UUID
    job_id: uuid.UUID
    status: JobStatus


class StoryAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "story_id": "2b7d9c1e-4f3a-4e8b-9d6c-5a4b3c2d1e0f",
                    "status": "waiting",
                    "jobs": [
                        {
                            "article_id": "8d1f3c3e-1a7b-4c55-b0de-2a9e6b1f7c42",
                            "job_id": "0b6e7a52-4a3c-4d47-9f0e-3f1d2f6c9a10",
                            "status": "queued",
                        },
                        {
                            "article_id": "1c9e2b7a-5d3f-4e61-9a8b-7c6d5e4f3a21",
                            "job_id": "5c0b9f4e-2d7a-4f3b-8e6c-1a2b3c4d5e6f",
                            "status": "queued",
                        },
                    ],
                }
            ]
        }
    )

    story_id: uuid.UUID
    status: StoryStatus
    jobs: list[StoryJob]


class StoryArticlePublic(StoryJob):
    """One article of a story and its job's progress."""

    position: int
    title: str | None
    source: str | None
    error: JobError | None = None


_EXAMPLE_STORY: JsonDict = {
    "id": "2a7d9c4b-6e1f-4b3a-8c5d-9e0f1a2b3c4d",
    "title": "Main Street closure",
    "status": "succeeded",
    "created_at": "2026-12-08T09:00:00Z",
    "finished_at": "2026-12-08T09:00:12Z",
    "articles": [
        {
            "position": 0,
            "article_id": "8d1f3c3e-1a7b-4c55-b0de-2a9e6b1f7c42",
            "job_id": "0b6e7a52-4a3c-4d47-9f0e-3f1d2f6c9a10",
            "status": "succeeded",
            "title": "Council votes to close Main Street",
            "source": "Harbor Gazette",
            "error": None,
        }
    ],
    "error": None,
    "result": EXAMPLE_STORY_RESULT,
}


class StoryPublic(BaseModel):
    """A story: its articles' jobs, then its comparison once every job ended."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_STORY]})

    id: uuid.UUID
    title: str | None
    status: StoryStatus
    created_at: UtcDateTime
    finished_at: UtcDateTime | None
    articles: list[StoryArticlePublic]
    error: JobError | None = None
    result: StoryResultPublic | None = None


class StoryPage(BaseModel):
    """A page of the caller's stories, newest first, without their results."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_EXAMPLE_STORY | {"result": None}], "next_cursor": None}]
        }
    )

    items: list[StoryPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


# --- what the routes do ---------------------------------------------------------------------------


def _existing_job(session: Session, owner: ApiKey, article_id: uuid.UUID) -> tuple[Job, str | None]:
    """A new job for an article this key submitted before (the worker reuses its stored result),
    with what Flower shows beside it."""
    article = session.get(Article, article_id)
    if article is None or article.owner_id != owner.id:
        raise Problem(422, f"no article {article_id} for this API key.")
    assert owner.id is not None
    job = Job(article_id=article.id, owner_id=owner.id)
    session.add(job)
    return job, task_label(article.title, article.source, article.url)


def submit_story(
    session: Session, owner: ApiKey, payload: StoryCreate, settings: Settings, usage: DailyUsage
) -> StoryAccepted:
    """The story, its articles and one job each in one transaction, then the jobs published."""
    if len(payload.articles) > settings.max_story_articles:
        raise Problem(
            413,
            f"The story has {len(payload.articles)} articles; the limit is "
            f"{settings.max_story_articles}.",
        )
    given = [a.article_id for a in payload.articles if isinstance(a, StoryArticleRef)]
    if len(set(given)) < len(given):
        raise Problem(422, "The same article_id is given twice; give each article once.")
    usage.enforce(session, owner, settings, new_jobs=len(payload.articles))
    assert owner.id is not None
    story = Story(owner_id=owner.id, title=payload.title)
    session.add(story)
    jobs: list[Job] = []
    labels: dict[uuid.UUID, str | None] = {}
    for index, item in enumerate(payload.articles):
        try:
            if isinstance(item, StoryArticleRef):
                job, label = _existing_job(session, owner, item.article_id)
            else:
                job, label = add_job(session, owner, item, settings), submission_label(item)
        except Problem as problem:
            session.rollback()  # nothing of the story is stored
            problem.detail = f"articles[{index}]: {problem.detail}"
            raise
        labels[job.id] = label
        jobs.append(job)
    session.flush()  # the story and the jobs first: story_article refers to them
    for position, job in enumerate(jobs):
        session.add(
            StoryArticle(
                story_id=story.id, position=position, job_id=job.id, article_id=job.article_id
            )
        )
    accepted = StoryAccepted(
        story_id=story.id,
        status=StoryStatus.waiting,
        jobs=[
            StoryJob(article_id=job.article_id, job_id=job.id, status=JobStatus.queued)
            for job in jobs
        ],
    )
    session.commit()
    publish_jobs([job.job_id for job in accepted.jobs], labels)
    return accepted


def no_such_story(story_id: uuid.UUID) -> Problem:
    # the same answer whether the story does not exist or belongs to another key
    return Problem(404, f"No story {story_id} for this API key.")


def _articles(session: Session, story_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    rows: sa.CursorResult[Any] = session.connection().execute(
        sa.select(
            col(StoryArticle.story_id),
            col(StoryArticle.position),
            col(StoryArticle.article_id),
            col(Job.id).label("job_id"),
            col(Job.status),
            col(Job.error_code),
            col(Job.error_message),
            col(Article.title),
            col(Article.source),
            col(Article.url),
        )
        .join(Job, col(Job.id) == col(StoryArticle.job_id))
        .join(Article, col(Article.id) == col(StoryArticle.article_id))
        .where(col(StoryArticle.story_id).in_(story_ids))
        .order_by(col(StoryArticle.story_id), col(StoryArticle.position))
    )
    by_story: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        by_story.setdefault(row.story_id, []).append(row)
    return by_story


def story_public(story: Story, rows: list[Any], *, with_result: bool = True) -> StoryPublic:
    articles = [
        StoryArticlePublic(
            position=row.position,
            article_id=row.article_id,
            job_id=row.job_id,
            status=row.status,
            title=row.title,
            source=row.source or row.url,
            error=JobError(code=row.error_code, message=row.error_message or "")
            if row.status == JobStatus.failed and row.error_code
            else None,
        )
        for row in rows
    ]
    error = None
    if story.status == StoryStatus.failed and story.error_code:
        error = JobError(code=story.error_code, message=story.error_message or "")
    return StoryPublic(
        id=story.id,
        title=story.title,
        status=story.status,
        created_at=story.created_at,
        finished_at=story.finished_at,
        articles=articles,
        error=error,
        result=load_story_result(story.document) if with_result else None,
    )


def read_story(session: Session, owner: ApiKey, story_id: uuid.UUID) -> StoryPublic:
    story = session.get(Story, story_id)
    if story is None or story.owner_id != owner.id:
        raise no_such_story(story_id)
    return story_public(story, _articles(session, [story.id]).get(story.id, []))


def _cursor(story: Story) -> str:
    # the same form as the jobs' cursor (api.service.decode_cursor reads both)
    return base64.urlsafe_b64encode(f"{story.created_at.isoformat()}|{story.id}".encode()).decode()


def list_stories(session: Session, owner: ApiKey, cursor: str | None, limit: int) -> StoryPage:
    """Keyset pagination on (created_at, id), like the jobs' list."""
    query = select(Story).where(Story.owner_id == owner.id)
    if cursor is not None:
        created_at, story_id = decode_cursor(cursor)
        query = query.where(
            sa.tuple_(col(Story.created_at), col(Story.id)) < (created_at, story_id)
        )
    query = query.order_by(col(Story.created_at).desc(), col(Story.id).desc()).limit(limit + 1)
    stories = list(session.exec(query))
    page = stories[:limit]
    rows = _articles(session, [s.id for s in page])
    return StoryPage(
        items=[story_public(s, rows.get(s.id, []), with_result=False) for s in page],
        next_cursor=_cursor(page[-1]) if len(stories) > limit else None,
    )
