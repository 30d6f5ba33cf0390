"""The FastAPI app: `uvicorn api.main:app` or `evenhand api`."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import KeyCache
from api.errors import install_error_handlers
from api.group_commit import GroupCommit
from api.job_cache import JobCache
from api.limits import DailyUsage, RateLimiter
from api.routes import articles, batches, health, jobs, pages, stories
from api.routes.pages import STATIC_DIR
from api.schemas import ArticleCreate, BatchCreate
from api.stories import StoryCreate
from api.watch import JobWatch
from kernel.config import get_settings
from kernel.jobs import published_marks
from kernel.logging import configure_logging
from kernel.metrics import JobsCollector
from kernel.tracing import trace_api

DESCRIPTION = """
evenhand turns news and opinion articles into neutral summaries and argument maps.

Submit an article with `POST /v1/articles`, then poll `GET /v1/jobs/{id}` (add `?wait=30` to
long-poll). Every `/v1` route needs `Authorization: Bearer <key>`; errors are
`application/problem+json` (RFC 9457).
"""


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    registry = api_registry(settings.queue)
    job_cache = JobCache(settings.job_cache_seconds, registry)
    job_watch = JobWatch(settings.broker_url, settings.queue, registry, job_cache)

    rate_limiter = RateLimiter(settings.broker_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        job_watch.start()
        rate_limiter.start()
        yield
        await run_in_threadpool(group_commit.close)
        await run_in_threadpool(published_marks.flush)  # else the sweeper publishes them again
        await rate_limiter.stop()
        await job_watch.stop()

    app = FastAPI(title="evenhand", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.job_watch = job_watch
    app.state.job_cache = job_cache
    app.state.key_cache = KeyCache(settings.key_cache_seconds)
    app.state.rate_limiter = rate_limiter
    app.state.daily_usage = DailyUsage()
    app.state.group_commit = group_commit = GroupCommit()
    install_error_handlers(app)

    app.add_middleware(DrainUnreadBodyMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    app.include_router(health.router)
    app.include_router(articles.router)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(stories.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics of this API process and of the jobs."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: openapi_with_hand_parsed_bodies(app)  # type: ignore[method-assign]
    trace_api(app)  # only when the OTEL_* variables ask for traces
    return app


class RequestIdMiddleware:
    """Binds the request's id (the client's X-Request-ID, else a new one) to every log line of
    the request, and returns it in X-Request-ID.

    Plain ASGI: Starlette's BaseHTTPMiddleware runs each request through an extra task and
    memory streams, which cost more than most of our routes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id", "")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


# How much of a refused request's body is read and dropped so that its sender reads the answer
DRAIN_MAX_BYTES = 64_000_000
DRAIN_MAX_SECONDS = 5.0


class DrainUnreadBodyMiddleware:
    """Reads and drops the rest of a request body the app answered without reading (a 413 for
    an oversized body, a 401, a 415), up to DRAIN_MAX_BYTES or DRAIN_MAX_SECONDS, before the
    answer goes out.

    A server that answers and closes while the client is still sending makes the client's
    kernel reset the connection, and clients that read only once they have sent everything
    (urllib, requests) then see "Connection reset by peer" instead of the answer. nginx
    lingers on such connections for the same reason. Past the bounds the answer is sent
    anyway and the connection closed. A client that waits for `100 Continue` before sending
    the body is answered at once: reading would ask it for the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        unread = headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in headers
        )
        # a client that sent `Expect: 100-continue` sends the body only once the app reads it
        waits_to_send = headers.get("expect", "").lower() == "100-continue"

        async def tracking_receive() -> Message:
            nonlocal unread, waits_to_send
            waits_to_send = False
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                unread = False
            return message

        async def draining_send(message: Message) -> None:
            if message["type"] == "http.response.start" and unread and not waits_to_send:
                await drain()
            await send(message)

        async def drain() -> None:
            nonlocal unread
            received = 0
            with suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_MAX_SECONDS):
                    while unread and received <= DRAIN_MAX_BYTES:
                        received += len((await tracking_receive()).get("body", b""))
            unread = False

        await self.app(scope, tracking_receive, draining_send)


def api_registry(queue: str) -> CollectorRegistry:
    """The API's metrics: job counts, queue depth and job age, plus the process's own."""
    registry = CollectorRegistry()
    registry.register(JobsCollector(queue))
    ProcessCollector(registry=registry)
    return registry


def openapi_with_hand_parsed_bodies(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies that routes parse themselves (to take several
    content types and refuse oversized bodies before reading them whole), which FastAPI does not
    list among the components on its own."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, extra = models_json_schema(
            [
                (ArticleCreate, "validation"),
                (BatchCreate, "validation"),
                (StoryCreate, "validation"),
            ],
            ref_template="#/components/schemas/{model}",
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(extra["$defs"])
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
