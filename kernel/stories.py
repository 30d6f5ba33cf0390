"""A story's life in the database: `waiting` while its articles' jobs run, `comparing` once every
one of them ended, then `succeeded` (the comparison stored) or `failed`.

Like a job's, every transition is a conditional UPDATE, so racing processes cannot both win:
the last job to end moves its story to `comparing` exactly once (kernel.stories.story_job_ended,
called by the worker after each run), the comparison task claims the story with a lease that its
worker renews, and the sweeper (worker/sweeper.py) catches what a crash or a lost message left:
stories whose jobs all ended while they still wait (a job canceled, or failed by the sweeper),
comparisons whose lease expired, and comparisons published long ago and never claimed.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlmodel import Session, col, select

from kernel.celery_app import COMPARE_STORY_TASK, celery_app
from kernel.config import Settings
from kernel.db import autocommit_scope
from kernel.events import announce_job
from kernel.jobs import task_label
from kernel.models import FINISHED_STATUSES, Job, Story, StoryArticle, StoryStatus, utcnow
from kernel.schemas import StoryResultPublic

log = structlog.get_logger(__name__)


def _pending_jobs() -> sa.Exists:
    """The story (of the enclosing statement) still has a job that has not ended."""
    return (
        sa.select(1)
        .select_from(StoryArticle)
        .join(Job, col(Job.id) == col(StoryArticle.job_id))
        .where(
            col(StoryArticle.story_id) == col(Story.id),
            col(Job.status).not_in([status.value for status in FINISHED_STATUSES]),
        )
        .exists()
    )


def _update(session: Session, *where: Any, **values: Any) -> int:
    result = session.connection().execute(sa.update(Story).where(*where).values(**values))
    session.commit()
    return result.rowcount


def send_story_task(story_id: uuid.UUID, title: str | None = None) -> bool:
    """Publish the story's comparison by task name (its task id is the story id, for Flower);
    False (logged) when the broker is unreachable."""
    story = str(story_id)
    label = task_label(title)
    try:
        celery_app.send_task(
            COMPARE_STORY_TASK,
            args=[story],
            task_id=story,
            argsrepr=repr((story, label) if label else (story,)),
        )
    except Exception as exc:  # kombu raises several connection error types
        log.warning("story_publish_failed", story_id=story, error=type(exc).__name__)
        return False
    return True


def start_comparing(session: Session, story_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """waiting -> comparing for those of the stories whose jobs have all ended; the ids moved.
    Of several processes racing on one story, exactly one moves it."""
    if not story_ids:
        return []
    moved = session.connection().execute(
        sa.update(Story)
        .where(
            col(Story.id).in_(story_ids),
            col(Story.status) == StoryStatus.waiting,
            ~_pending_jobs(),
        )
        .values(status=StoryStatus.comparing, published_at=None)
        .returning(col(Story.id))
    )
    ids = list(moved.scalars())
    session.commit()
    return ids


def publish_comparisons(session: Session, story_ids: list[uuid.UUID]) -> int:
    """Reserve each unpublished comparison (so several sweepers publish it once), then send it;
    how many were sent. With the broker away the rest stay unpublished for the sweeper."""
    sent = 0
    for story_id in story_ids:
        reserved = _update(
            session,
            col(Story.id) == story_id,
            col(Story.status) == StoryStatus.comparing,
            col(Story.lease_expires_at).is_(None),
            col(Story.published_at).is_(None),
            published_at=utcnow(),
        )
        if reserved != 1:
            continue
        title = session.exec(select(Story.title).where(Story.id == story_id)).first()
        if not send_story_task(story_id, title):
            _update(session, col(Story.id) == story_id, published_at=None)
            break
        sent += 1
    return sent


def story_job_ended(settings: Settings, job_id: uuid.UUID) -> None:
    """After a job's run: when it was its story's last job to end, start the comparison.

    Never raises: the job itself is stored; the sweeper starts a comparison missed here."""
    try:
        with autocommit_scope() as session:
            stories = list(
                session.exec(select(StoryArticle.story_id).where(StoryArticle.job_id == job_id))
            )
            if not stories:
                return
            moved = start_comparing(session, stories)
            publish_comparisons(session, moved)
        for story_id in stories:
            announce_job(settings, story_id)  # a job of it changed: its waiters read it again
    except Exception as exc:
        log.warning("story_advance_failed", error=type(exc).__name__)


@dataclass(frozen=True)
class StoryClaim:
    """A worker's hold on a comparison: only the holder of `token` may renew, store or fail it."""

    story_id: uuid.UUID
    token: uuid.UUID
    attempt: int


def _unheld(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(Story.status) == StoryStatus.comparing,
        sa.or_(col(Story.lease_expires_at).is_(None), col(Story.lease_expires_at) < now),
    )


def claim_story(
    session: Session, story_id: uuid.UUID, *, lease_seconds: float, max_attempts: int
) -> StoryClaim | None:
    """Take a comparison no live worker holds; None when it is held, finished, or out of
    attempts (then it is failed with `too_many_attempts`)."""
    now, token = utcnow(), uuid.uuid4()
    attempt = (
        session.connection()
        .execute(
            sa.update(Story)
            .where(col(Story.id) == story_id, col(Story.attempts) < max_attempts, _unheld(now))
            .values(
                attempts=Story.attempts + 1,
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
            .returning(col(Story.attempts))
        )
        .scalar_one_or_none()
    )
    session.commit()
    if attempt is not None:
        return StoryClaim(story_id, token, attempt)
    _update(
        session,
        col(Story.id) == story_id,
        col(Story.attempts) >= max_attempts,
        _unheld(now),
        status=StoryStatus.failed,
        error_code="too_many_attempts",
        error_message=f"The comparison was started {max_attempts} times without finishing "
        "(its worker stopped each time); it will not be tried again.",
        finished_at=now,
        lease_token=None,
        lease_expires_at=None,
    )
    return None


def _held(claim: StoryClaim) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        col(Story.id) == claim.story_id,
        col(Story.status) == StoryStatus.comparing,
        col(Story.lease_token) == claim.token,
    )


def renew_story_lease(session: Session, claim: StoryClaim, lease_seconds: float) -> bool:
    """Extend the claim; False when another worker took the comparison over meanwhile."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    return _update(session, *_held(claim), lease_expires_at=expires) == 1


def store_story_result(session: Session, claim: StoryClaim, result: StoryResultPublic) -> bool:
    """comparing -> succeeded with the result document, only for the claim's holder."""
    return (
        _update(
            session,
            *_held(claim),
            status=StoryStatus.succeeded,
            document=result.model_dump(mode="json"),
            finished_at=utcnow(),
            lease_expires_at=None,
        )
        == 1
    )


def fail_story(session: Session, claim: StoryClaim, code: str, message: str) -> bool:
    """comparing -> failed with a stable code and a human message."""
    return (
        _update(
            session,
            *_held(claim),
            status=StoryStatus.failed,
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
            lease_expires_at=None,
        )
        == 1
    )


def load_story_result(document: dict[str, Any] | None) -> StoryResultPublic | None:
    return None if document is None else StoryResultPublic.model_validate(document)


# --- the sweeper's part ---------------------------------------------------------------------------


@dataclass
class StorySweep:
    started: int = 0  # waiting stories whose jobs had all ended, moved to comparing
    reclaimed: int = 0  # comparisons whose worker died (lease expired), made claimable again
    published: int = 0
    changed: list[uuid.UUID] | None = None  # stories whose waiters should read them again


def sweep_stories(session: Session, *, republish_after: float, batch: int = 200) -> StorySweep:
    """Start, reclaim and (re)publish the comparisons that a crash, a cancel or a lost message
    left behind. Safe to run in several workers at once."""
    now = utcnow()
    report = StorySweep(changed=[])
    ready = list(
        session.exec(
            select(Story.id)
            .where(col(Story.status) == StoryStatus.waiting, ~_pending_jobs())
            .limit(batch)
        )
    )
    moved = start_comparing(session, ready)
    report.started = len(moved)
    expired = list(
        session.exec(
            select(Story.id)
            .where(col(Story.status) == StoryStatus.comparing, col(Story.lease_expires_at) < now)
            .limit(batch)
        )
    )
    if expired:
        report.reclaimed = _update(
            session,
            col(Story.id).in_(expired),
            col(Story.status) == StoryStatus.comparing,
            col(Story.lease_expires_at) < now,
            lease_token=None,
            lease_expires_at=None,
            published_at=None,
        )
    stale_before = now - timedelta(seconds=republish_after)
    candidates = list(
        session.exec(
            select(Story.id)
            .where(
                col(Story.status) == StoryStatus.comparing,
                col(Story.lease_expires_at).is_(None),
                sa.or_(col(Story.published_at).is_(None), col(Story.published_at) < stale_before),
            )
            .limit(batch)
        )
    )
    if candidates:
        # a publication long unclaimed (a lost message) is cleared first, so that the
        # reservation in publish_comparisons takes each story once
        _update(
            session,
            col(Story.id).in_(candidates),
            col(Story.status) == StoryStatus.comparing,
            col(Story.lease_expires_at).is_(None),
            col(Story.published_at) < stale_before,
            published_at=None,
        )
    report.published = publish_comparisons(session, candidates)
    report.changed = list(dict.fromkeys([*moved, *expired]))
    return report


def forget_story_publications(session: Session, published_before: datetime) -> int:
    """Unclaimed comparisons published before the broker lost its messages are published again."""
    return _update(
        session,
        col(Story.status) == StoryStatus.comparing,
        col(Story.lease_expires_at).is_(None),
        col(Story.published_at) < published_before,
        published_at=None,
    )
