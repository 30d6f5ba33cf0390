"""Submitting many articles at once, and following the batch."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from api.deps import CurrentKeyDep, SessionDep, SettingsDep
from api.errors import Problem, invalid_body
from api.routes.articles import read_limited_body
from api.schemas import BatchCreate, BatchPublic
from api.service import read_batch, submit_batch

router = APIRouter(prefix="/v1/batches", tags=["batches"])


async def parse_batch(request: Request, settings: SettingsDep) -> BatchCreate:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem(
            415, f"Send the batch as application/json (got '{content_type or 'no content type'}')."
        )
    body = await read_limited_body(request, settings.max_body_bytes)
    try:
        return BatchCreate.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc, "batch") from None


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
    payload: Annotated[BatchCreate, Depends(parse_batch)],
) -> BatchPublic:
    """Submit many articles; one job each, all stored or none."""
    batch, _jobs = submit_batch(session, owner, payload, settings)
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    return read_batch(session, owner, batch.id)


@router.get("/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: uuid.UUID, owner: CurrentKeyDep, session: SessionDep) -> BatchPublic:
    """A batch's progress and its jobs."""
    return read_batch(session, owner, batch_id)
