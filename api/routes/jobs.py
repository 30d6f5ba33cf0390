"""Reading jobs, with an optional long-poll."""

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentKeyDep, JobCacheDep, JobWatchDep, SessionDep, SettingsDep
from api.job_cache import JobAnswer, JobCache
from api.schemas import JobPage
from api.service import cancel, list_jobs, no_such_job, read_job, retry
from kernel.db import autocommit_scope
from kernel.models import FINISHED_STATUSES, ApiKey, JobStatus
from kernel.schemas import JobPublic

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _read_job_once(owner: ApiKey, job_id: uuid.UUID) -> JobPublic:
    # A short session per read: a long-poll must not hold a connection while it sleeps.
    # No transaction: a job's result rows are committed with its status, so reads agree.
    with autocommit_scope() as session:
        return read_job(session, owner, job_id)


async def _answer(
    owner: ApiKey, job_id: uuid.UUID, cache: JobCache, *, fresh: bool = False
) -> JobAnswer:
    """The job's answer: from this process's cache, unless `fresh` (a waiter's fallback read,
    which is there to catch a lost announcement), else from the database."""
    if not fresh and (cached := cache.get(job_id)) is not None:
        if cached.owner_id != owner.id:
            raise no_such_job(job_id)
        return cached
    reservation = cache.reserve(job_id)
    try:
        job = await run_in_threadpool(_read_job_once, owner, job_id)
    except BaseException:  # a 404, the database away, the client gone: keep no reservation
        cache.release(job_id, reservation)
        raise
    assert owner.id is not None
    answer = JobAnswer(owner_id=owner.id, status=job.status, body=job.model_dump_json().encode())
    cache.fill(job_id, reservation, answer)
    return answer


@router.get("", response_model=JobPage)
def get_jobs(
    owner: CurrentKeyDep,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobPage:
    """The caller's jobs, newest first, a page at a time."""
    return list_jobs(session, owner, status, cursor, limit)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(
    job_id: uuid.UUID,
    owner: CurrentKeyDep,
    watch: JobWatchDep,
    cache: JobCacheDep,
    wait: Annotated[
        float,
        Query(
            ge=0, le=30, description="Hold the request up to this many seconds until the job ends"
        ),
    ] = 0,
) -> Response:
    """A job's status, with its result once it succeeded or its error once it failed."""
    answer = await watch.long_poll(
        job_id,
        wait,
        lambda fresh: _answer(owner, job_id, cache, fresh=fresh),
        lambda answer: answer.status in FINISHED_STATUSES,
    )
    return Response(answer.body, media_type="application/json")


SSE_HEARTBEAT = 15.0  # seconds between keep-alive comments, so proxies keep the stream open
SSE_MAX_SECONDS = 900.0  # a stream ends after this; the client reconnects or polls


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def job_events(
    job_id: uuid.UUID, owner: CurrentKeyDep, watch: JobWatchDep, cache: JobCacheDep
) -> StreamingResponse:
    """Server-sent events: `status` on every change, then `job` (the whole job) when it ends."""
    await _answer(owner, job_id, cache)  # 404 before streaming

    async def stream() -> AsyncIterator[bytes]:
        last_status, started = None, time.monotonic()
        last_sent = started
        fresh = False
        with watch.watching(job_id) as changed:
            while True:
                answer = await _answer(owner, job_id, cache, fresh=fresh)
                fresh = True
                if answer.status != last_status:
                    last_status = answer.status
                    last_sent = time.monotonic()
                    yield _sse("status", json.dumps({"status": answer.status}))
                if answer.status in FINISHED_STATUSES:
                    yield _sse("job", answer.body.decode())
                    return
                now = time.monotonic()
                if now - started > SSE_MAX_SECONDS:
                    return
                if now - last_sent > SSE_HEARTBEAT:
                    last_sent = now
                    yield b": keep-alive\n\n"
                await watch.wait(changed, SSE_HEARTBEAT)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete(
    "/{job_id}", response_model=JobPublic, responses={409: {"description": "Already finished"}}
)
def cancel_job(
    job_id: uuid.UUID,
    owner: CurrentKeyDep,
    session: SessionDep,
    settings: SettingsDep,
    cache: JobCacheDep,
) -> JobPublic:
    """Cancel a queued or running job; it will never get a result."""
    return cancel(session, owner, job_id, settings, cache)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=JobPublic,
    responses={409: {"description": "Not failed or canceled"}},
)
def retry_job(
    job_id: uuid.UUID,
    owner: CurrentKeyDep,
    session: SessionDep,
    settings: SettingsDep,
    cache: JobCacheDep,
) -> JobPublic:
    """Run a failed or canceled job again."""
    return retry(session, owner, job_id, settings, cache)
