"""What can go wrong between submit and the collector, typed by whether a retry can help."""

from __future__ import annotations

from bp_common.errors import PermanentError, TransientError, Unavailable


class CollectorUnavailable(Unavailable):
    """The collector cannot be reached (or the circuit breaker is open): retry the message later.

    `retry_after_s` says when the breaker lets the next attempt through; nothing is lost, the
    message is nacked and comes back with the bus's backoff.
    """

    def __init__(self, message: str, *, retry_after_s: float = 0.0, **context: object) -> None:
        super().__init__(message, **context)
        self.retry_after_s = retry_after_s


class CollectorCallFailed(TransientError):
    """A call failed in a way a later attempt may not (an internal error, lost data)."""


class IncompatibleCollector(PermanentError):
    """The collector speaks another major version of the contract, or cannot run what we need."""


class CollectionRejected(PermanentError):
    """The collector refused the job (invalid inputs, a job key reused with another request)."""


class CollectionFailed(PermanentError):
    """The collector ended the job without recording every episode, or it was cancelled."""


class CollectionInProgress(TransientError):
    """The follow budget ran out while the job still runs: the redelivered message re-attaches."""


class EpisodeTransferFailed(TransientError):
    """An episode arrived incomplete or with a checksum that does not match; fetched again later."""
