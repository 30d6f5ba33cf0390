"""Submitting and reading articles."""

import uuid
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ValidationError

from api.deps import CurrentKeyDep, DailyUsageDep, GroupCommitDep, SessionDep, SettingsDep
from api.errors import Problem, invalid_body
from api.schemas import SUBMIT_EXAMPLE, ArticleAccepted, ArticleCreate, ArticlePublic
from api.service import read_article, submit_article

router = APIRouter(prefix="/v1/articles", tags=["articles"])

BodyT = TypeVar("BodyT", bound=BaseModel)

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ArticleCreate"},
                "example": SUBMIT_EXAMPLE,
            },
            "text/plain": {
                "schema": {"type": "string"},
                "example": "The council voted to close the library. Critics say it was rushed.",
            },
            "text/html": {
                "schema": {"type": "string"},
                "example": "<html><body><article><p>...</p></article></body></html>",
            },
        },
    }
}


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The request body is larger than {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise Problem(413, f"The request body is larger than {limit} bytes.")
    return bytes(body)


def content_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json_body(request: Request, limit: int, model: type[BodyT], what: str) -> BodyT:
    """A JSON body read as `model`: 415 unless it is JSON, 413 past `limit`, 422 saying what to fix."""
    content_type = content_type_of(request)
    if content_type != "application/json":
        raise Problem(
            415, f"Send the {what} as application/json (got '{content_type or 'no content type'}')."
        )
    body = await read_limited_body(request, limit)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc, what) from None


async def parse_submission(request: Request, settings: SettingsDep) -> ArticleCreate:
    """An ArticleCreate from a JSON body, or from a raw text/plain or text/html body."""
    content_type = content_type_of(request)
    if content_type not in ("application/json", "text/plain", "text/html"):
        raise Problem(
            415,
            "Send the article as application/json, text/plain or text/html "
            f"(got '{content_type or 'no content type'}').",
        )
    body = await read_limited_body(request, settings.max_body_bytes)
    try:
        if content_type == "application/json":
            return ArticleCreate.model_validate_json(body)
        text = body.decode("utf-8")
        title = request.query_params.get("title")
        if content_type == "text/html":
            return ArticleCreate(html=text, title=title)
        return ArticleCreate(text=text, title=title)
    except ValidationError as exc:
        raise invalid_body(exc, "article") from None
    except UnicodeDecodeError:
        raise Problem(400, "The body is not valid UTF-8 text.") from None


@router.post(
    "",
    status_code=202,
    response_model=ArticleAccepted,
    openapi_extra=_SUBMIT_BODY,
    responses={415: {"description": "Unsupported content type"}, 413: {"description": "Too large"}},
)
async def create_article(
    response: Response,
    owner: CurrentKeyDep,
    session: SessionDep,
    settings: SettingsDep,
    usage: DailyUsageDep,
    groups: GroupCommitDep,
    payload: Annotated[ArticleCreate, Depends(parse_submission)],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Repeat a POST safely: the same key and body replay the first answer",
        ),
    ] = None,
) -> ArticleAccepted:
    """Submit an article; answers 202 with the job to poll."""
    answer, replayed = await submit_article(
        session, owner, payload, settings, usage, groups, idempotency_key
    )
    response.headers["Location"] = f"/v1/jobs/{answer.job_id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/{article_id}", response_model=ArticlePublic)
def get_article(article_id: uuid.UUID, owner: CurrentKeyDep, session: SessionDep) -> ArticlePublic:
    """An article with its clean text and latest result."""
    return read_article(session, owner, article_id)
