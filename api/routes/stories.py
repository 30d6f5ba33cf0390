"""Stories: several articles about one event, compared."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentKeyDep, DailyUsageDep, JobWatchDep, SessionDep, SettingsDep
from api.routes.articles import read_json_body
from api.stories import (
    StoryAccepted,
    StoryCreate,
    StoryPage,
    StoryPublic,
    list_stories,
    read_story,
    submit_story,
)
from kernel.db import autocommit_scope
from kernel.models import FINISHED_STORY_STATUSES, ApiKey

router = APIRouter(prefix="/v1/stories", tags=["stories"])


async def parse_story(request: Request, settings: SettingsDep) -> StoryCreate:
    return await read_json_body(request, settings.max_body_bytes, StoryCreate, "story")


@router.post(
    "",
    status_code=202,
    response_model=StoryAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/StoryCreate"}}
            },
        }
    },
    responses={413: {"description": "Too many articles"}, 415: {"description": "Not JSON"}},
)
def create_story(
    response: Response,
    owner: CurrentKeyDep,
    session: SessionDep,
    settings: SettingsDep,
    usage: DailyUsageDep,
    payload: Annotated[StoryCreate, Depends(parse_story)],
) -> StoryAccepted:
    """Submit 2 or more articles about one event; one job each, then their comparison."""
    accepted = submit_story(session, owner, payload, settings, usage)
    response.headers["Location"] = f"/v1/stories/{accepted.story_id}"
    return accepted


@router.get("", response_model=StoryPage)
def get_stories(
    owner: CurrentKeyDep,
    session: SessionDep,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> StoryPage:
    """The caller's stories, newest first, a page at a time."""
    return list_stories(session, owner, cursor, limit)


def _read_story_once(owner: ApiKey, story_id: uuid.UUID) -> StoryPublic:
    # a short session per read: a long-poll must not hold a connection while it sleeps
    with autocommit_scope() as session:
        return read_story(session, owner, story_id)


@router.get("/{story_id}", response_model=StoryPublic)
async def get_story(
    story_id: uuid.UUID,
    owner: CurrentKeyDep,
    watch: JobWatchDep,
    wait: Annotated[
        float,
        Query(
            ge=0, le=30, description="Hold the request up to this many seconds until the story ends"
        ),
    ] = 0,
) -> StoryPublic:
    """A story's articles and their jobs, then its comparison once every job ended."""
    # the worker announces a story's changes on its id, as it does a job's
    return await watch.long_poll(
        story_id,
        wait,
        lambda _fresh: run_in_threadpool(_read_story_once, owner, story_id),
        lambda story: story.status in FINISHED_STORY_STATUSES,
    )
