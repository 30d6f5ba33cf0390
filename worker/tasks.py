"""Celery tasks: thin wrappers that take ids and call the pipeline."""

import uuid

import structlog
from celery import Task
from celery.signals import task_postrun, task_prerun

from evenhand.celery_app import SUMMARIZE_TASK, celery_app
from evenhand.config import get_settings
from worker.pipeline import run_job


@task_prerun.connect
def _bind_task_context(task_id: str, task: Task, args: tuple = (), **_kwargs: object) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)
    if args:
        structlog.contextvars.bind_contextvars(job_id=str(args[0]))


@task_postrun.connect
def _clear_task_context(**_kwargs: object) -> None:
    structlog.contextvars.clear_contextvars()


@celery_app.task(name=SUMMARIZE_TASK)
def summarize_job(job_id: str) -> None:
    """Summarize the article of job `job_id` (re-read from the database)."""
    run_job(uuid.UUID(job_id), get_settings())
