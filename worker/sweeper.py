"""The sweeper: a thread in every worker process that recovers what crashes and broker outages
left behind (see kernel.jobs.reclaim_expired and publish_waiting). Several workers sweeping
at once is safe."""

import threading
from datetime import datetime, timedelta

import structlog
from celery import Celery

from kernel.config import Settings
from kernel.db import session_scope
from kernel.events import announce_job
from kernel.jobs import forget_publications, publish_waiting, reclaim_expired
from kernel.models import utcnow
from kernel.stories import forget_story_publications, sweep_stories
from worker.provider_batches import sweep_provider_batches

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

    def broker_lost_since(self) -> datetime | None:
        """When Redis lost the messages it held, if it did since the last look: the time it
        started, when it restarted without persistence (or failed over to an empty replica).

        A marker key per queue tells: when it is missing, Redis is new since the last look, and
        what was published before Redis started is gone; what was published since is waiting in
        the queue and is left alone. A Redis flushed without a restart is caught by
        EVENHAND_REPUBLISH_AFTER instead.
        """
        marker = f"evenhand:{self.settings.queue}:broker-epoch"
        with self.app.connection_for_write() as connection:
            client = connection.default_channel.client
            if not client.set(marker, "1", nx=True):
                return None
            uptime = int(client.info("server")["uptime_in_seconds"])
        # Redis counts whole seconds, so it may have started up to a second later than `uptime`
        # says: take the later time (what was published just after it started may be sent twice,
        # which the claim makes harmless; nothing published before it is missed)
        return utcnow() - timedelta(seconds=uptime - 1)

    def sweep_once(self) -> None:
        with session_scope() as session:
            # a Redis new to us: only what was published before it started is lost
            started = self.broker_lost_since()
            if started and (requeued := forget_publications(session, published_before=started)):
                log.warning("broker_data_lost", requeued=requeued)
            if started:
                forget_story_publications(session, published_before=started)
            reclaimed = reclaim_expired(session, max_attempts=self.settings.max_attempts)
            # before publishing, which may fail: whoever waits on these jobs reads them again
            for job_id in reclaimed.expired:
                announce_job(self.settings, job_id)
            published = publish_waiting(session, republish_after=self.settings.republish_after)
            # stories: comparisons to start (every job ended), reclaim or publish again
            stories = sweep_stories(session, republish_after=self.settings.republish_after)
            for story_id in stories.changed or []:
                announce_job(self.settings, story_id)
            # after the jobs: a provider that answers slowly delays only its own batches
            provider = sweep_provider_batches(session, self.settings)
        if reclaimed.reclaimed or reclaimed.exhausted or published:
            log.info(
                "sweep",
                reclaimed=reclaimed.reclaimed,
                exhausted=reclaimed.exhausted,
                published=published,
            )
        if stories.started or stories.reclaimed or stories.published:
            log.info(
                "story_sweep",
                started=stories.started,
                reclaimed=stories.reclaimed,
                published=stories.published,
            )

        if provider.sent or provider.ended:
            log.info(
                "provider_batch_sweep",
                sent=provider.sent,
                ended=provider.ended,
                unparked=provider.unparked,
            )

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception as exc:  # the database or Redis may be briefly away: sweep again
                log.warning("sweep_failed", error=type(exc).__name__)
