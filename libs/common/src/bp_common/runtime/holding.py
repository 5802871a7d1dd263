"""A delivery's hold on its unit of work: the ledger lease, renewed from a heartbeat thread.

The heartbeat renews every third of the lease's lifetime until the work deadline; past it the
lease is left to lapse, so a handler that hangs cannot keep its unit from every other delivery.
A renewal that finds the lease gone (lapsed, or taken over) marks the hold as lost; `check()`
raises LeaseLost from then on.

A holder names its process (`holder_name`): the machine's boot id, the pid and the process's
start time. On one machine (the embedded default, where every holder shares the folder) a
holder whose process is gone is known dead at once, so `bp run` after a crash resumes without
waiting for the lease to lapse.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from functools import cache
from pathlib import Path
from types import TracebackType

from bp_common.errors import PipelineError
from bp_common.ledger.leases import Lease, LeaseBook, LeaseLost

log = logging.getLogger("bp.lease")


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "unknown"


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it does not run."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_name() -> str:
    """A fresh holder id for one delivery: `{boot}:{pid}:{start}:{random}`."""
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_started(pid) or '-'}:{uuid.uuid4().hex[:10]}"


def holder_gone(holder: str) -> bool:
    """True only when the holder is a process of this machine that no longer runs."""
    parts = holder.split(":")
    if len(parts) != 4 or parts[0] != _boot_id() or parts[0] == "unknown" or parts[2] == "-":
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    return _started(pid) != parts[2]


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
