"""The sweeper: a thread in every worker process that recovers what crashes and broker outages
left behind (see evenhand.jobs.sweep). Several workers sweeping at once is safe."""

import threading

import structlog

from evenhand.config import Settings
from evenhand.db import session_scope
from evenhand.jobs import sweep

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evenhand-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep_once(self) -> None:
        with session_scope() as session:
            report = sweep(
                session,
                max_attempts=self.settings.max_attempts,
                republish_after=self.settings.republish_after,
            )
        if report.reclaimed or report.exhausted or report.published:
            log.info("sweep", **vars(report))

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception as exc:  # the database may be briefly away; sweep again later
                log.warning("sweep_failed", error=type(exc).__name__)
