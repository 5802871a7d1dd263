"""A delivery's hold on its unit of work: the ledger lease, renewed from a heartbeat thread.

The heartbeat renews every third of the lease's lifetime until the work deadline; past it the
lease is left to lapse, so a handler that hangs cannot keep its unit from every other delivery.
A renewal that finds the lease gone (lapsed, or taken over) marks the hold as lost; `check()`
raises LeaseLost from then on.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from bp_common.errors import PipelineError
from bp_common.ledger.leases import Lease, LeaseBook, LeaseLost

log = logging.getLogger("bp.lease")


class Hold:
    def __init__(
        self, leases: LeaseBook, lease: Lease, *, ttl_s: float, work_deadline_s: float
    ) -> None:
        self.leases = leases
        self.lease = lease
        self.ttl_s = ttl_s
        self.until = time.monotonic() + work_deadline_s
        self.lost: LeaseLost | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{lease.unit}-{lease.token}", daemon=True
        )

    def __enter__(self) -> Hold:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            if time.monotonic() >= self.until:
                log.warning(
                    "work deadline passed: letting the lease on %s lapse",
                    self.lease.unit,
                    extra={"run_id": self.lease.run_id, "holder": self.lease.holder},
                )
                return
            try:
                self.lease = self.leases.renew(self.lease, self.ttl_s)
            except LeaseLost as exc:
                self.lost = exc
                log.error("lost the lease on %s: %s", self.lease.unit, exc)
                return
            except PipelineError as exc:  # the ledger is briefly unreachable: try at the next beat
                log.warning("could not renew the lease on %s: %s", self.lease.unit, exc)

    def check(self) -> None:
        """Raise LeaseLost unless this hold still has its lease, as the ledger says now."""
        if self.lost is not None:
            raise self.lost
        self.leases.check(self.lease)

    def release(self, outcome: str) -> None:
        """Stop renewing and end the tenure in the log (a lost lease has nothing to release)."""
        self.stop()
        try:
            self.leases.release(self.lease, outcome)
        except PipelineError as exc:  # it lapses by itself: nobody waits longer than its ttl
            log.warning("could not release the lease on %s: %s", self.lease.unit, exc)
