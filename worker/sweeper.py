"""The sweeper: a thread in every worker process that recovers what crashes and broker outages
left behind (see kernel.jobs.reclaim_expired and publish_waiting). Several workers sweeping
at once is safe."""

import threading

import structlog
from celery import Celery

from kernel.config import Settings
from kernel.db import session_scope
from kernel.events import announce_job
from kernel.jobs import forget_publications, publish_waiting, reclaim_expired

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
            reclaimed = reclaim_expired(session, max_attempts=self.settings.max_attempts)
            # before publishing, which may fail: whoever waits on these jobs reads them again
            for job_id in reclaimed.expired:
                announce_job(self.settings, job_id)
            published = publish_waiting(session, republish_after=self.settings.republish_after)
        if reclaimed.reclaimed or reclaimed.exhausted or published:
            log.info(
                "sweep",
                reclaimed=reclaimed.reclaimed,
                exhausted=reclaimed.exhausted,
                published=published,
            )

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception as exc:  # the database or Redis may be briefly away: sweep again
                log.warning("sweep_failed", error=type(exc).__name__)
