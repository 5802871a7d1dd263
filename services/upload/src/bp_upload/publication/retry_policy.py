"""Exponential backoff with full jitter, and deadlines that every wait and request respects."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bp_upload.errors import DeadlineExceeded, UploadCancelled

Clock = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): uniform in [0, min(cap, initial * multiplier**(n-1))].

    Full jitter spreads clients that failed together (a restarted server) across the window.
    """

    initial_s: float = 0.5
    multiplier: float = 2.0
    cap_s: float = 20.0

    def ceiling(self, retry: int) -> float:
        return float(min(self.cap_s, self.initial_s * self.multiplier ** max(0, retry - 1)))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(retry))


class Deadline:
    """A point in monotonic time; `None` seconds means no limit."""

    def __init__(self, seconds: float | None, *, clock: Clock = time.monotonic, what: str) -> None:
        self.clock = clock
        self.what = what
        self.at = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def check(self, **context: object) -> None:
        if self.expired:
            raise DeadlineExceeded(f"{self.what} ran out", **context)


def soonest(*deadlines: Deadline) -> float | None:
    """Seconds until the first of the deadlines; None when none is set."""
    left = [r for d in deadlines if (r := d.remaining()) is not None]
    return min(left) if left else None


class Cancel:
    """A flag the coordinator sets to stop every transfer at its next chunk."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = reason
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self, **context: object) -> None:
        if self._event.is_set():
            raise UploadCancelled(f"transfer stopped: {self.reason}", **context)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when cancelled."""
        if seconds > 0:
            self._event.wait(seconds)
