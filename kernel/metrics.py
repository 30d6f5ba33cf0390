"""Prometheus metrics. The worker counts what it does (LLM latency, tokens, retries, finished
jobs) and serves them on its own port; the API computes the job counts, queue depth and job age
from the database and Redis at scrape time, so every replica reports the same numbers."""

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import Session, col, func, select

from kernel.celery_app import celery_app
from kernel.db import get_engine
from kernel.models import Job, JobStatus

log = structlog.get_logger(__name__)

# --- counted by the worker --------------------------------------------------------------------

LLM_LATENCY = Histogram(
    "evenhand_llm_request_seconds",
    "Duration of LLM requests, by model and outcome (ok, or the error that ended it)",
    ["model", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
LLM_TOKENS = Counter(
    "evenhand_llm_tokens",
    "LLM tokens used, by model and kind (prompt, completion)",
    ["model", "kind"],
)
LLM_RETRIES = Counter("evenhand_llm_retries", "LLM requests retried, by reason", ["reason"])
JOBS_FINISHED = Counter(
    "evenhand_jobs_finished", "Jobs a worker ended, by status and error code", ["status", "code"]
)


# --- computed by the API at scrape time -------------------------------------------------------


class JobsCollector(Collector):
    """Jobs by status, the broker queue's depth and the age of the oldest queued job."""

    def __init__(self, queue: str) -> None:
        self.queue = queue

    @staticmethod
    def families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("evenhand_jobs", "Jobs by status", labels=["status"]),
            GaugeMetricFamily(
                "evenhand_oldest_queued_job_age_seconds", "Age of the oldest job still queued"
            ),
            GaugeMetricFamily(
                "evenhand_queue_depth", "Messages waiting in the broker queue", labels=["queue"]
            ),
        )

    def describe(self) -> list[Metric]:
        # what collect() yields, without touching the database (registration calls this)
        return list(self.families())

    def collect(self) -> Iterator[Metric]:
        by_status, age, depth = self.families()
        try:
            with Session(get_engine()) as session:
                counts = dict(
                    session.exec(select(Job.status, func.count()).group_by(Job.status)).all()
                )
                oldest = session.exec(
                    select(sa.func.min(Job.created_at)).where(col(Job.status) == JobStatus.queued)
                ).one()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics_database_unavailable", error=type(exc).__name__)
        else:
            for status in JobStatus:
                by_status.add_metric([status.value], counts.get(status, 0))
            if oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                age.add_metric([], (datetime.now(UTC) - oldest).total_seconds())
            else:
                age.add_metric([], 0)
            yield by_status
            yield age
        try:
            with celery_app.connection_for_read() as connection:
                messages = connection.default_channel.client.llen(self.queue)
        except Exception as exc:
            log.warning("metrics_broker_unavailable", error=type(exc).__name__)
        else:
            depth.add_metric([self.queue], messages)
            yield depth
