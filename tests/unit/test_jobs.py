"""The job state machine on a real (SQLite) database: claims, leases, fencing, poison jobs."""

import time
import uuid

import pytest
from sqlmodel import Session

from api.job_cache import JobAnswer, JobCache
from api.service import cancel
from kernel import jobs
from kernel.config import Settings
from kernel.jobs import (
    cancel_job,
    claim_job,
    fail_job,
    mark_succeeded,
    reclaim_expired,
    renew_lease,
    requeue_job,
)
from kernel.keys import create_key
from kernel.models import ApiKey, Article, Job, JobStatus
from kernel.results import result_of_job
from kernel.schemas import EXAMPLE_RESULT, ArgumentPointPublic, EvidencePublic, ResultPublic
from worker.lease import LeaseKeeper
from worker.runner import store


def new_job(session: Session) -> uuid.UUID:
    key, _ = create_key(session, f"k-{uuid.uuid4()}")
    assert key.id is not None
    article = Article(owner_id=key.id, input_kind="text", raw_text="A sentence.")
    job = Job(article_id=article.id, owner_id=key.id)
    session.add(article)
    session.add(job)
    session.commit()
    return job.id


def status(session: Session, job_id: uuid.UUID) -> Job:
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def test_only_one_claim_wins_and_only_its_holder_finishes(session: Session) -> None:
    job_id = new_job(session)
    claim = claim_job(session, job_id, lease_seconds=30, max_attempts=3)
    assert claim is not None and claim.attempt == 1
    assert (
        claim_job(session, job_id, lease_seconds=30, max_attempts=3) is None
    )  # a duplicate delivery
    stranger = claim.__class__(job_id=job_id, token=uuid.uuid4(), attempt=1)
    assert not mark_succeeded(session, stranger)
    assert not fail_job(session, stranger, "x", "y")
    assert mark_succeeded(session, claim)
    session.commit()
    assert status(session, job_id).status == JobStatus.succeeded
    assert claim_job(session, job_id, lease_seconds=30, max_attempts=3) is None


def test_an_expired_lease_can_be_claimed_again_and_voids_the_old_claim(session: Session) -> None:
    job_id = new_job(session)
    first = claim_job(session, job_id, lease_seconds=0.01, max_attempts=3)
    time.sleep(0.05)
    second = claim_job(session, job_id, lease_seconds=30, max_attempts=3)
    assert first is not None and second is not None and second.attempt == 2
    assert not renew_lease(session, first, 30)  # the dead worker's claim is void
    assert not mark_succeeded(session, first)
    assert renew_lease(session, second, 30)


def test_a_poison_job_stops_after_max_attempts(session: Session) -> None:
    job_id = new_job(session)
    for attempt in range(1, 4):  # its worker dies every time: the lease just expires
        claim = claim_job(session, job_id, lease_seconds=0.01, max_attempts=3)
        assert claim is not None and claim.attempt == attempt
        time.sleep(0.05)
        if attempt < 3:
            assert reclaim_expired(session, max_attempts=3).reclaimed == 1
            assert status(session, job_id).status == JobStatus.queued
    assert reclaim_expired(session, max_attempts=3).exhausted == 1
    job = status(session, job_id)
    assert job.status == JobStatus.failed and job.error_code == "too_many_attempts"
    assert "3 times" in (job.error_message or "")


def test_cancel_voids_a_running_claim_and_retry_starts_afresh(session: Session) -> None:
    job_id = new_job(session)
    claim = claim_job(session, job_id, lease_seconds=30, max_attempts=3)
    assert claim is not None
    assert cancel_job(session, job_id)
    assert not cancel_job(session, job_id)  # already canceled
    assert not mark_succeeded(session, claim)  # a canceled job never gets a result
    assert requeue_job(session, job_id)
    assert not requeue_job(session, job_id)  # queued: nothing to retry
    job = status(session, job_id)
    assert job.status == JobStatus.queued and job.attempts == 0 and job.finished_at is None


def test_a_stored_result_reads_back_with_each_quote_on_its_own_point(session: Session) -> None:
    job_id = new_job(session)
    claim = claim_job(session, job_id, lease_seconds=30, max_attempts=3)
    assert claim is not None

    def quote(text: str) -> EvidencePublic:
        return EvidencePublic(quote=text, start=0, end=len(text), verified=True, score=100.0)

    points = [  # no quote, one, two: a quote on the wrong point would show
        ArgumentPointPublic(
            claim=f"claim {i}",
            speaker="the author",
            premises=[f"premise {i}"],
            evidence=[quote(f"quote {i}.{j}") for j in range(i)],
        )
        for i in range(3)
    ]
    result = ResultPublic.model_validate(EXAMPLE_RESULT).model_copy(
        update={"argument_points": points}
    )
    assert store(session, claim, status(session, job_id).article_id, result, "a-hash")
    stored = result_of_job(session.connection(), job_id)
    assert stored is not None and stored.argument_points == points
    assert status(session, job_id).status == JobStatus.succeeded


def test_a_broker_failing_midway_leaves_the_unsent_jobs_for_the_sweeper(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_ids = [new_job(session) for _ in range(3)]
    sent: list[uuid.UUID] = []

    def broker_fails_after_one(job_id: uuid.UUID, *_label: object, **_producer: object) -> bool:
        if sent:
            return False
        sent.append(job_id)
        return True

    monkeypatch.setattr(jobs, "send_job_task", broker_fails_after_one)
    assert jobs.publish_jobs(job_ids) == 1
    published = {job_id: status(session, job_id).published_at for job_id in job_ids}
    assert published[job_ids[0]] is not None
    assert published[job_ids[1]] is None and published[job_ids[2]] is None


def test_one_keeper_renews_every_held_lease_and_tells_when_one_is_lost(session: Session) -> None:
    keeper = LeaseKeeper()
    kept, canceled = new_job(session), new_job(session)
    claims = [
        claim_job(session, job_id, lease_seconds=0.6, max_attempts=3) for job_id in (kept, canceled)
    ]
    assert claims[0] is not None and claims[1] is not None
    claimed_until = status(session, kept).lease_expires_at
    assert claimed_until is not None
    with keeper.hold(claims[0], 0.6) as kept_lost, keeper.hold(claims[1], 0.6) as canceled_lost:
        time.sleep(0.9)  # renewed every 0.2 s: still held past the lease it was claimed with
        renewed_until = status(session, kept).lease_expires_at
        assert renewed_until is not None and renewed_until > claimed_until
        assert claim_job(session, kept, lease_seconds=30, max_attempts=3) is None
        assert cancel_job(session, canceled)
        assert canceled_lost.wait(2)
        assert not kept_lost.is_set()
    time.sleep(0.8)  # let go: no longer renewed, the lease runs out and another worker claims it
    assert claim_job(session, kept, lease_seconds=30, max_attempts=3) is not None


def test_a_cancel_drops_the_job_from_this_api_process_cache_at_once(session: Session) -> None:
    # The caller's next read must see its own change, before any announcement comes back.
    job_id = new_job(session)
    owner = session.get(ApiKey, status(session, job_id).owner_id)
    assert owner is not None and owner.id is not None
    cache = JobCache(ttl=60)
    cache.start_serving()
    answer = JobAnswer(owner_id=owner.id, status=JobStatus.queued, body=b"{}")
    cache.fill(job_id, cache.reserve(job_id), answer)
    settings = Settings(REDIS_URL="redis://127.0.0.1:1/0")  # no announcement reaches anyone
    assert cancel(session, owner, job_id, settings, cache).status == JobStatus.canceled
    assert cache.get(job_id) is None
