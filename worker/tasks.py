"""Celery tasks: thin wrappers that take ids and call the pipeline; and the sweeper, started and
stopped with every worker as a bootstep."""

import uuid
from typing import Any

import structlog
from celery import Task, bootsteps
from celery.app.task import Context
from celery.exceptions import Retry
from celery.signals import task_postrun, task_prerun, task_retry, worker_init
from prometheus_client import start_http_server
from sqlalchemy.exc import InterfaceError, OperationalError

from kernel.celery_app import COMPARE_STORY_TASK, SUMMARIZE_TASK, WEBHOOK_TASK, celery_app
from kernel.config import get_settings
from kernel.jobs import send_webhook
from kernel.tracing import trace_worker
from worker.errors import PipelineError
from worker.lease import LeaseKeeper
from worker.llm import trace_llm_calls
from worker.runner import run_job
from worker.stories import run_story
from worker.sweeper import Sweeper
from worker.webhooks import DeliveryFailed, deliver

log = structlog.get_logger(__name__)

WEBHOOK_BACKOFF_MAX = 600  # seconds: no wait between two deliveries is longer


@worker_init.connect
def _start_tracing(**_kwargs: object) -> None:
    # Off (and nothing imported) unless the OTEL_* variables ask for traces.
    if trace_worker():
        trace_llm_calls()


@task_prerun.connect
def _bind_task_context(task_id: str, task: Task, args: tuple = (), **_kwargs: object) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)
    if args:
        structlog.contextvars.bind_contextvars(job_id=str(args[0]))


@task_postrun.connect
def _clear_task_context(**_kwargs: object) -> None:
    structlog.contextvars.clear_contextvars()


class SummarizeTask(Task):
    """Celery makes one instance of a task per process: it owns the lease keeper that all the
    process's jobs share."""

    def __init__(self) -> None:
        super().__init__()
        self.leases = LeaseKeeper()


# A database that is away when a task runs (it cannot claim its job, or store what it made)
# retries the task with backoff and jitter, instead of leaving the job to the sweeper's
# republish (EVENHAND_REPUBLISH_AFTER, minutes); after its retries the sweeper still has it.
DATABASE_AWAY = (OperationalError, InterfaceError)
RETRY_WHILE_DATABASE_AWAY: dict[str, Any] = {
    "autoretry_for": DATABASE_AWAY,
    "max_retries": 20,
    "retry_backoff": True,
    "retry_backoff_max": 60,  # seconds: no wait between two tries is longer
    "retry_jitter": True,
}


# A failed job ends its task as FAILURE with the job's code and message, so Flower tells the
# truth; `throws` marks it expected: logged in one line, without a traceback.
@celery_app.task(
    name=SUMMARIZE_TASK,
    bind=True,
    base=SummarizeTask,
    throws=(PipelineError,),
    **RETRY_WHILE_DATABASE_AWAY,
)
def summarize_job(self: SummarizeTask, job_id: str) -> None:
    """Summarize the article of job `job_id` (re-read from the database)."""
    outcome = run_job(uuid.UUID(job_id), get_settings(), self.leases, task_id=self.request.id)
    if outcome.webhook_due:
        send_webhook(job_id)
    if outcome.failure is not None:
        raise outcome.failure


class WebhookTask(Task):
    """Logs a delivery given up (Celery re-raises the last failure once max_retries is spent)."""

    def on_failure(
        self, exc: Exception, task_id: str, args: tuple, kwargs: dict, einfo: object
    ) -> None:
        if isinstance(exc, DeliveryFailed):
            log.warning("webhook_given_up", attempts=self.request.retries + 1, reason=str(exc))


@task_retry.connect
def _log_retry(sender: Task, request: Context, reason: Retry, **_kwargs: object) -> None:
    if isinstance(reason.exc, DATABASE_AWAY):
        log.warning(
            "database_away_retry",
            attempt=request.retries + 1,
            error=type(reason.exc).__name__,
            countdown=reason.when,
        )
    elif sender.name == WEBHOOK_TASK:
        log.warning(
            "webhook_retry",
            attempt=request.retries + 1,
            reason=str(reason.exc),
            countdown=reason.when,
        )


_webhook_settings = get_settings()


# Celery retries a failed delivery: the n-th retry waits a random whole number of seconds up to
# webhook_backoff * 2**(n-1) (full jitter, so receivers coming back are not hit all at once).
# `throws`: the last failure is logged in one line, without a traceback.
@celery_app.task(
    name=WEBHOOK_TASK,
    base=WebhookTask,
    autoretry_for=(DeliveryFailed,),
    max_retries=_webhook_settings.webhook_max_attempts - 1,
    retry_backoff=_webhook_settings.webhook_backoff,
    retry_backoff_max=WEBHOOK_BACKOFF_MAX,
    retry_jitter=True,
    throws=(DeliveryFailed,),
)
def deliver_webhook(job_id: str) -> None:
    """POST a finished job to its callback URL; a DeliveryFailed is retried with backoff."""
    deliver(uuid.UUID(job_id), get_settings())


# Like a job's: the task id is the story id; a failed comparison ends its task as FAILURE.
@celery_app.task(
    name=COMPARE_STORY_TASK,
    throws=(PipelineError,),
    **RETRY_WHILE_DATABASE_AWAY,
)
def compare_story(story_id: str) -> None:
    """Compare the articles of story `story_id` (re-read from the database)."""
    failure = run_story(uuid.UUID(story_id), get_settings())
    if failure is not None:
        raise failure


class SweeperStep(bootsteps.StartStopStep):
    """Runs the sweeper for as long as the worker runs."""

    def __init__(self, parent: object, **kwargs: object) -> None:
        super().__init__(parent, **kwargs)
        self.sweeper = Sweeper(get_settings(), celery_app)

    def start(self, parent: object) -> None:
        self.sweeper.start()

    def stop(self, parent: object) -> None:
        self.sweeper.stop()


class MetricsStep(bootsteps.StartStopStep):
    """Serves the worker's Prometheus metrics on EVENHAND_WORKER_METRICS_PORT (0: off)."""

    def start(self, parent: object) -> None:
        settings = get_settings()
        if not settings.worker_metrics_port:
            return
        try:
            start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        except OSError as exc:  # another worker on this machine has the port: run without
            log.warning(
                "worker_metrics_unavailable", port=settings.worker_metrics_port, error=str(exc)
            )


celery_app.steps["worker"].add(SweeperStep)
celery_app.steps["worker"].add(MetricsStep)
