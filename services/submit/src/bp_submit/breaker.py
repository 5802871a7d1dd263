"""A circuit breaker: after repeated failures calls fail fast for a while, then one probe goes.

Closed: calls go through; `failure_threshold` consecutive failures open it. Open: calls fail at
once until `reset_after_s` has passed. Half-open: one call goes through; success closes the
breaker, failure opens it again for twice as long (up to `max_reset_after_s`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after_s: float = 15.0,
        max_reset_after_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.base_reset_s = reset_after_s
        self.max_reset_s = max_reset_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._reset_s = reset_after_s
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def _current(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock() - self._opened_at >= self._reset_s:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after_s(self) -> float:
        with self._lock:
            if self._current() is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self._reset_s - self.clock())

    def allow(self) -> bool:
        """Whether a call may go now; in half-open, only the first caller gets to probe."""
        with self._lock:
            state = self._current()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._state = BreakerState.CLOSED
            self._reset_s = self.base_reset_s
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            state = self._current()
            self._failures += 1
            if state is BreakerState.HALF_OPEN:
                self._open(min(self.max_reset_s, self._reset_s * 2))
            elif state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
                self._open(self.base_reset_s)

    def _open(self, reset_s: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self.clock()
        self._reset_s = reset_s
        self._probing = False
