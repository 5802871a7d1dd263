"""The collector's gRPC client as submit uses it: mTLS, deadlines, retries with exponential
backoff, a circuit breaker, and gRPC status codes turned into permanent or transient errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from bp_collector_api import API_VERSION, api_major, collector_pb2_grpc
from bp_collector_api import collector_pb2 as pb
from bp_common.errors import NotFound, PipelineError, UnsafeConfiguration
from bp_common.secrets import SecretStore

from bp_submit.breaker import BreakerState, CircuitBreaker
from bp_submit.errors import (
    CollectionInProgress,
    CollectionRejected,
    CollectorCallFailed,
    CollectorUnavailable,
    IncompatibleCollector,
)

log = logging.getLogger("bp.submit.client")
T = TypeVar("T")

CLIENT_KEY = "collector-client-key"
CLIENT_CERT = "collector-client-cert"
SERVER_CA = "collector-ca"

TERMINAL = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
# Codes a later attempt may not see. Anything else means the collector answered and refused.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.CANCELLED,
    }
)
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ClientTls:
    key: bytes = field(repr=False)
    cert: bytes
    ca: bytes

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def load_client_tls(secrets: SecretStore) -> ClientTls:
    """Submit's client key and certificate, and the CA the collector's certificate chains to."""
    found: dict[str, bytes] = {}
    missing = []
    for name in (CLIENT_KEY, CLIENT_CERT, SERVER_CA):
        try:
            found[name] = secrets.get(name)
        except NotFound:
            missing.append(name)
    if missing:
        raise UnsafeConfiguration(
            "submit",
            [f"mTLS to the collector needs the secret {m} ({secrets!r})" for m in missing],
        )
    return ClientTls(key=found[CLIENT_KEY], cert=found[CLIENT_CERT], ca=found[SERVER_CA])


def _describe(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code.name if code else 'ERROR'}: {details}"


class CollectorClient:
    """One channel to one collector. Safe to share between threads and deliveries; the breaker
    is what makes a down collector cheap: after a few failures calls fail at once."""

    def __init__(
        self,
        address: str,
        tls: ClientTls | None,
        *,
        breaker: CircuitBreaker | None = None,
        retry_budget_s: float = 20.0,
        call_timeout_s: float = 30.0,
        watch_stream_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.address = address
        self.tls = tls
        self.breaker = breaker or CircuitBreaker()
        self.retry_budget_s = retry_budget_s
        self.call_timeout_s = call_timeout_s
        self.watch_stream_s = watch_stream_s
        self.sleep = sleep
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Reconnect quickly once the collector is back, rather than after gRPC's 2 min cap.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ]
        self.channel = (
            grpc.insecure_channel(address, options=options)
            if tls is None
            else grpc.secure_channel(address, tls.credentials(), options=options)
        )
        self.stub = collector_pb2_grpc.CollectorStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def _unavailable(self, what: str, detail: str) -> CollectorUnavailable:
        return CollectorUnavailable(
            f"collector unreachable ({what}): {detail}",
            retry_after_s=self.breaker.retry_after_s(),
            address=self.address,
            breaker=self.breaker.state.value,
        )

    def _admit(self, what: str) -> None:
        """Let the call go once the breaker does, waiting for it for up to the retry budget:
        failing at once would spend a delivery attempt in milliseconds, and a few redeliveries
        later the run, on a collector that is known to be coming back (a partition, a restart).
        """
        give_up = time.monotonic() + self.retry_budget_s
        while not self.breaker.allow():
            left = give_up - time.monotonic()
            if left <= 0:
                raise self._unavailable(
                    what, f"circuit breaker open, next try in {self.breaker.retry_after_s():.0f}s"
                )
            wait = max(self.breaker.retry_after_s(), 0.2)  # half-open: another call probes
            self.sleep(min(wait * random.uniform(1.0, 1.2), left))

    def _refused(self, what: str, exc: grpc.RpcError) -> PipelineError:
        code = exc.code()
        if code is grpc.StatusCode.NOT_FOUND:
            return NotFound(f"{what}: {exc.details()}", address=self.address)
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return CollectionRejected(
                f"{what}: the collector refused our identity ({_describe(exc)})",
                address=self.address,
            )
        return CollectionRejected(f"{what}: {_describe(exc)}", address=self.address)

    def call(self, what: str, fn: Callable[[float], T], timeout_s: float | None = None) -> T:
        """A unary call with a deadline, retried with backoff while the failure may pass."""
        give_up = time.monotonic() + self.retry_budget_s
        delay = 0.2
        while True:
            self._admit(what)
            try:
                result = fn(timeout_s or self.call_timeout_s)
            except grpc.RpcError as exc:
                if exc.code() not in _RETRYABLE:
                    self.breaker.record_success()  # it answered: reachable, just unwilling
                    raise self._refused(what, exc) from exc
                self.breaker.record_failure()
                if time.monotonic() + delay > give_up or self.breaker.state is BreakerState.OPEN:
                    if exc.code() in _UNREACHABLE:
                        raise self._unavailable(what, _describe(exc)) from exc
                    raise CollectorCallFailed(
                        f"{what}: {_describe(exc)}", address=self.address
                    ) from exc
                log.info("%s failed (%s); retrying in %.1fs", what, _describe(exc), delay)
                self.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 5.0)
                continue
            self.breaker.record_success()
            return result

    def handshake(self) -> pb.CollectorInfo:
        """GetInfo, refusing a collector of another major API version."""
        info: pb.CollectorInfo = self.call(
            "GetInfo",
            lambda t: self.stub.GetInfo(pb.GetInfoRequest(client_api_version=API_VERSION),
                                        timeout=t),
            timeout_s=min(10.0, self.call_timeout_s),
        )
        try:
            theirs = api_major(info.api_version)
        except ValueError as exc:
            raise IncompatibleCollector(
                f"collector reports an unreadable api_version {info.api_version!r}",
                address=self.address,
            ) from exc
        if theirs != api_major(API_VERSION):
            raise IncompatibleCollector(
                f"collector speaks API {info.api_version}, this submit speaks {API_VERSION}:"
                " the major versions differ, so neither side can trust the other's messages;"
                " deploy a matching collector or submit",
                address=self.address,
                server_version=info.server_version,
            )
        return info

    def start(self, request: pb.StartCollectionRequest) -> pb.StartCollectionResponse:
        response: pb.StartCollectionResponse = self.call(
            "StartCollection", lambda t: self.stub.StartCollection(request, timeout=t)
        )
        return response

    def get_job(self, job_id: str) -> pb.Job:
        job: pb.Job = self.call(
            "GetJob", lambda t: self.stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=t)
        )
        return job

    def cancel(self, job_id: str, reason: str = "") -> pb.Job:
        job: pb.Job = self.call(
            "CancelJob",
            lambda t: self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id, reason=reason),
                                          timeout=t),
        )
        return job

    def follow(self, job_id: str, after: int, until: float) -> Iterator[pb.JobUpdate]:
        """Every update of the job after sequence `after`, across reconnects, to its end.

        Streams are reopened from the last sequence seen, so nothing is missed or repeated.
        Raises CollectionInProgress at the monotonic time `until`, and CollectorUnavailable
        once the collector has stayed unreachable for the retry budget or the breaker opened.
        """
        cursor = after
        failing_since: float | None = None
        delay = 0.2
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise CollectionInProgress(
                    "collection still running after this delivery's follow budget",
                    job_id=job_id,
                    sequence=cursor,
                )
            self._admit("WatchJob")
            stream = self.stub.WatchJob(
                pb.WatchJobRequest(job_id=job_id, after_sequence=cursor),
                timeout=min(remaining, self.watch_stream_s),
            )
            try:
                for update in stream:
                    self.breaker.record_success()
                    failing_since, delay = None, 0.2
                    if not update.HasField("heartbeat"):
                        cursor = update.sequence
                    yield update
                    if update.WhichOneof("event") == "state" and update.state in TERMINAL:
                        return
            except grpc.RpcError as exc:
                code = exc.code()
                if code is grpc.StatusCode.DEADLINE_EXCEEDED and failing_since is None:
                    continue  # our own per-stream deadline: reopen from the cursor
                if code not in _RETRYABLE:
                    self.breaker.record_success()
                    raise self._refused("WatchJob", exc) from exc
                self.breaker.record_failure()
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since + delay > self.retry_budget_s:
                    raise self._unavailable("WatchJob", _describe(exc)) from exc
                log.info("watch of %s interrupted (%s); reconnecting", job_id, _describe(exc))
                self.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 5.0)
            finally:
                stream.cancel()

    def fetch(self, job_id: str, episode_id: str, timeout_s: float) -> Iterator[pb.EpisodeChunk]:
        """One attempt at streaming an episode; the caller verifies and retries."""
        self._admit("FetchEpisode")
        return self.stub.FetchEpisode(  # type: ignore[no-any-return]
            pb.FetchEpisodeRequest(job_id=job_id, episode_id=episode_id), timeout=timeout_s
        )
