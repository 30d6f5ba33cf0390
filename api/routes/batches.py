"""Submitting many articles at once, and following the batch."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.deps import CurrentKeyDep, DailyUsageDep, SessionDep, SettingsDep
from api.routes.articles import read_json_body
from api.schemas import BatchCreate, BatchPublic
from api.service import read_batch, submit_batch

router = APIRouter(prefix="/v1/batches", tags=["batches"])


async def parse_batch(request: Request, settings: SettingsDep) -> BatchCreate:
    return await read_json_body(request, settings.max_body_bytes, BatchCreate, "batch")


@router.post(
    "",
    status_code=202,
    response_model=BatchPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/BatchCreate"}}
            },
        }
    },
    responses={413: {"description": "Too many articles"}, 415: {"description": "Not JSON"}},
)
def create_batch(
    response: Response,
    owner: CurrentKeyDep,
    session: SessionDep,
    settings: SettingsDep,
    usage: DailyUsageDep,
    payload: Annotated[BatchCreate, Depends(parse_batch)],
) -> BatchPublic:
    """Submit many articles; one job each, all stored or none."""
    batch, _jobs = submit_batch(session, owner, payload, settings, usage)
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    return read_batch(session, owner, batch.id)


@router.get("/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: uuid.UUID, owner: CurrentKeyDep, session: SessionDep) -> BatchPublic:
    """A batch's progress and its jobs."""
    return read_batch(session, owner, batch_id)
