"""Keeping claimed jobs' leases alive while their worker works on them.

A worker that dies (SIGKILL, OOM, a lost machine) stops renewing; the sweeper then finds the
expired lease and queues the job again within `job_lease_seconds` + `sweep_interval`, instead of
waiting for Redis's visibility timeout.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from kernel.db import autocommit_scope
from kernel.jobs import Claim, renew_lease

log = structlog.get_logger(__name__)


@dataclass
class _Lease:
    lease_seconds: float
    lost: threading.Event
    due: float  # time.monotonic() of the next renewal


class LeaseKeeper:
    """One thread per worker process renews the leases of all the claims it holds, each every
    third of the lease's length: starting and joining a thread per job cost more CPU than a
    short job's database work.

    The thread starts with the first claim kept (so after a prefork pool's fork, in the child).
    """

    def __init__(self) -> None:
        self._leases: dict[Claim, _Lease] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wakes_at: float | None = None  # when the thread wakes next; None: when notified

    @contextmanager
    def hold(self, claim: Claim, lease_seconds: float) -> Iterator[threading.Event]:
        """Renew the claim's lease every third of `lease_seconds` until the block ends.

        Yields an event that is set when the claim is lost (the job was canceled or reclaimed):
        the pipeline stops spending LLM calls on it.
        """
        lease = _Lease(lease_seconds, threading.Event(), time.monotonic() + lease_seconds / 3)
        with self._changed:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="evenhand-leases", daemon=True
                )
                self._thread.start()
            self._leases[claim] = lease
            if self._wakes_at is None or lease.due < self._wakes_at:
                self._changed.notify()  # else its turn comes at the wake already planned
        try:
            yield lease.lost
        finally:
            with self._changed:
                self._leases.pop(claim, None)

    def _wait_until_due(self) -> list[tuple[Claim, _Lease]]:
        """Wait until some claims are due, and schedule their next renewal."""
        with self._changed:
            while True:
                now = time.monotonic()
                due = [(claim, lease) for claim, lease in self._leases.items() if lease.due <= now]
                if due:
                    for _claim, lease in due:
                        lease.due = now + lease.lease_seconds / 3
                    return due
                self._wakes_at = min((lease.due for lease in self._leases.values()), default=None)
                self._changed.wait(None if self._wakes_at is None else self._wakes_at - now)

    def _run(self) -> None:
        while True:
            due = self._wait_until_due()
            try:
                # the claims due together share one connection
                with autocommit_scope() as session:
                    lost = [
                        (claim, lease)
                        for claim, lease in due
                        if not renew_lease(session, claim, lease.lease_seconds)
                    ]
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("lease_renewal_failed", error=type(exc).__name__)
                continue
            for claim, lease in lost:
                lease.lost.set()
                with self._changed:  # lost for good: renew it no more
                    if self._leases.get(claim) is lease:
                        del self._leases[claim]
