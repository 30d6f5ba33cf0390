"""Keeping a claimed job's lease alive while its worker works on it.

A worker that dies (SIGKILL, OOM, a lost machine) stops renewing; the sweeper then finds the
expired lease and queues the job again within `job_lease_seconds` + `sweep_interval`, instead of
waiting for Redis's visibility timeout.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from evenhand.db import autocommit_scope
from evenhand.jobs import Claim, renew_lease

log = structlog.get_logger(__name__)


@contextmanager
def keep_lease(claim: Claim, lease_seconds: float) -> Iterator[threading.Event]:
    """Renew the lease every third of its length until the block ends.

    Yields an event that is set when the claim is lost (the job was canceled or reclaimed):
    the pipeline stops spending LLM calls on it.
    """
    stop, lost = threading.Event(), threading.Event()

    def renew() -> None:
        while not stop.wait(lease_seconds / 3):
            try:
                with autocommit_scope() as session:
                    held = renew_lease(session, claim, lease_seconds)
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("lease_renewal_failed", error=type(exc).__name__)
                continue
            if not held:
                lost.set()
                return

    thread = threading.Thread(target=renew, name=f"lease-{claim.job_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)
