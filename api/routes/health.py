"""Liveness and readiness."""

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.errors import problem_response
from kernel.celery_app import celery_app
from kernel.db import get_engine

router = APIRouter(tags=["health"])


def _check_database() -> str:
    try:
        with get_engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def _check_broker() -> str:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz() -> JSONResponse:
    """The database and the broker answer."""
    database, broker = await asyncio.gather(
        run_in_threadpool(_check_database), run_in_threadpool(_check_broker)
    )
    checks = {"database": database, "broker": broker}
    failing = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
    if failing:
        return problem_response(503, "Not ready: " + "; ".join(failing), checks=checks)
    return JSONResponse({"status": "ready", "checks": checks})
