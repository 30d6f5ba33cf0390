"""RFC 9457 problem+json for every error the API returns; no stack trace ever leaves the process."""

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error answer: raise it from any route or dependency."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.headers = headers
        self.extra = extra


def invalid_body(exc: ValidationError, what: str) -> Problem:
    """A 422 naming, in words, the first thing wrong with a body the route parsed itself."""
    first = exc.errors()[0]
    return Problem(422, f"The {what} is not valid: {describe_error(first)}.")


_HINTS = {"language": " (send a language tag such as 'en' or 'pt-BR')"}


def describe_error(error: Any) -> str:
    """One pydantic error as words: where, and what to send instead (never a regex)."""
    where = _where(error.get("loc", ()))
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error', 'cannot be parsed')})"
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not a field we know; leave it out"
    if kind == "string_too_long":
        hint = _HINTS.get(str(error.get("loc", ("",))[-1]), "")
        return f"{where} is longer than {ctx['max_length']} characters{hint}"
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "too_short":
        least = ctx["min_length"]
        return f"{where} must hold at least {least} item{'' if least == 1 else 's'}"
    if kind == "string_type":
        return f"{where} must be a JSON string"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{where} must be a JSON object"
    if kind == "list_type":
        return f"{where} must be a JSON array"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{where} must be a whole number"
    if kind == "greater_than_equal":
        return f"{where} must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{where} must be at most {ctx['le']}"
    if kind == "enum":
        return f"{where} must be one of {ctx['expected']}"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where != "the body" else message


def _where(loc: Any) -> str:
    """`('body', 'articles', 0, 'url')` as `'articles[0].url'`; a header or query parameter named
    as such."""
    parts = [p for p in loc if p != "body"]
    if loc and loc[0] == "header" and len(parts) == 2:
        return f"the {'-'.join(w.capitalize() for w in str(parts[1]).split('-'))} header"
    if loc and loc[0] == "query" and len(parts) == 2:
        return f"the query parameter '{parts[1]}'"
    if loc and loc[0] == "path" and len(parts) == 2:
        return f"'{parts[1]}' in the path"
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"'{path}'" if path else "the body"


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": type_, "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        location = ".".join(str(part) for part in err.get("loc", ()))
        errors.append({"location": location, "message": describe_error(err)})
    summary = "; ".join(e["message"] for e in errors[:5])
    return f"The request is not valid: {summary}.", errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, type_=exc.type, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem_response(422, detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.error("database_unavailable", error=type(exc).__name__)
        return problem_response(
            503,
            "The database is unreachable; nothing was stored. Try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return problem_response(500, "An internal error occurred; it has been logged.")
