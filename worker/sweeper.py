"""The sweeper: a thread in every worker process that recovers what crashes and broker outages
left behind (see evenhand.jobs.sweep). Several workers sweeping at once is safe."""

import threading

import structlog
from celery import Celery

from evenhand.config import Settings
from evenhand.db import session_scope
from evenhand.events import announce_job
from evenhand.jobs import forget_publications, sweep

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evenhand-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def broker_lost_messages(self) -> bool:
        """Whether Redis lost its data since the last look (restarted without persistence,
        flushed, failed over to an empty replica).

        A marker key per queue tells: when it is missing, every message published before may be
        gone, so the queued jobs are published again instead of waiting `republish_after`.
        """
        marker = f"evenhand:{self.settings.queue}:broker-epoch"
        with self.app.connection_for_write() as connection:
            return bool(connection.default_channel.client.set(marker, "1", nx=True))

    def sweep_once(self) -> None:
        with session_scope() as session:
            if self.broker_lost_messages():
                log.warning("broker_data_lost", requeued=forget_publications(session))
            report = sweep(
                session,
                max_attempts=self.settings.max_attempts,
                republish_after=self.settings.republish_after,
            )
        for job_id in report.expired:
            announce_job(self.settings, job_id)
        if report.reclaimed or report.exhausted or report.published:
            log.info(
                "sweep",
                reclaimed=report.reclaimed,
                exhausted=report.exhausted,
                published=report.published,
            )

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception as exc:  # the database or Redis may be briefly away: sweep again
                log.warning("sweep_failed", error=type(exc).__name__)
