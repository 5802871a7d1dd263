"""The collector's gRPC server: channel security, limits, the job runner, and a graceful stop.

Outside `local` the server speaks TLS and requires a client certificate signed by the client
CA; key, certificate and CA come from the secrets adapter. Plaintext is allowed only in `local`
and only on a loopback address.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from bp_collector_api import API_VERSION, collector_pb2_grpc
from bp_common.config import PipelineEnv
from bp_common.errors import NotFound, PermanentError, UnsafeConfiguration
from bp_common.secrets import SecretStore

from bp_collector.backends import DEFAULT_BACKEND, create_backend
from bp_collector.jobs.runner import EpisodeDefaults, JobRunner
from bp_collector.jobs.store import JobStore
from bp_collector.service.servicer import CollectorService, Limits, WatchTiming

log = logging.getLogger("bp.collector.server")

SERVER_KEY = "collector-server-key"
SERVER_CERT = "collector-server-cert"
CLIENT_CA = "collector-client-ca"
# One CA may sign both sides (the deployment's `collector-ca`); a separate client CA wins.
SHARED_CA = "collector-ca"


class CollectorBusy(PermanentError):
    """Another collector process already owns this data folder."""


@dataclass(frozen=True)
class ServerTls:
    key: bytes = field(repr=False)
    cert: bytes
    client_ca: bytes

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.client_ca, require_client_auth=True
        )


def load_server_tls(secrets: SecretStore) -> ServerTls:
    """The server's key and certificate and the CA its clients' certificates must chain to."""
    missing = []
    found: dict[str, bytes] = {}
    for name in (SERVER_KEY, SERVER_CERT):
        try:
            found[name] = secrets.get(name)
        except NotFound:
            missing.append(name)
    client_ca = None
    for name in (CLIENT_CA, SHARED_CA):
        try:
            client_ca = secrets.get(name)
            break
        except NotFound:
            continue
    if client_ca is None:
        missing.append(f"{CLIENT_CA} (or {SHARED_CA})")
    if missing:
        raise UnsafeConfiguration(
            "collector",
            [f"TLS with client certificates needs the secret {m} ({secrets!r})" for m in missing],
        )
    assert client_ca is not None
    return ServerTls(key=found[SERVER_KEY], cert=found[SERVER_CERT], client_ca=client_ca)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def wants_plaintext(env: PipelineEnv, host: str, requested: bool | None) -> bool:
    """Plaintext only in `local` on loopback (the default there); refuse it anywhere else.

    `requested` is the operator's choice: True (--plaintext), False (--tls) or None (default).
    """
    allowed = env is PipelineEnv.LOCAL and is_loopback(host)
    if requested and not allowed:
        where = "outside PIPELINE_ENV=local" if env is not PipelineEnv.LOCAL else f"on {host}"
        raise UnsafeConfiguration(
            env.value,
            [
                f"plaintext gRPC is refused {where}: the collector serves plaintext only in"
                " local and only on a loopback address; use TLS with client certificates"
            ],
        )
    return allowed if requested is None else bool(requested)


def grpc_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Detect dead peers on long WatchJob streams; accept the clients' keepalive pings.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


class CollectorServer:
    """One collector: a backend, a data folder (job store and episodes), a runner, a gRPC port."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 50061,
        *,
        tls: ServerTls | None,
        backend: str = DEFAULT_BACKEND,
        workers: int | None = None,
        limits: Limits | None = None,
        watch: WatchTiming | None = None,
        defaults: EpisodeDefaults | None = None,
        max_attempts: int = 3,
        max_concurrent_rpcs: int = 64,
        api_version: str = API_VERSION,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port
        self.tls = tls
        self.limits = limits or Limits()
        self.workers = workers or os.cpu_count() or 1
        self._lock_file: IO[str] | None = None
        # The simulation processes make their own from the name; this one says what they offer.
        self.backend = create_backend(backend)
        self._claim_data_dir()
        self.store = JobStore(self.data_dir / "jobs.sqlite")
        self.runner = JobRunner(
            self.store,
            self.data_dir,
            backend=backend,
            workers=self.workers,
            max_running_jobs=self.limits.max_running_jobs,
            max_attempts=max_attempts,
            defaults=defaults,
        )
        self.service = CollectorService(
            self.store,
            self.runner,
            self.data_dir,
            self.backend.capabilities(),
            limits=self.limits,
            workers=self.workers,
            watch=watch,
            api_version=api_version,
        )
        # Each WatchJob stream holds a thread; past max_concurrent_rpcs callers get
        # RESOURCE_EXHAUSTED at once instead of queueing without bound.
        self.server = grpc.server(
            ThreadPoolExecutor(max_workers=max_concurrent_rpcs + 4, thread_name_prefix="rpc"),
            options=grpc_options(self.limits.max_message_bytes),
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        collector_pb2_grpc.add_CollectorServicer_to_server(  # type: ignore[no-untyped-call]
            self.service, self.server
        )
        self._stopped = threading.Event()

    def _claim_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.data_dir / "collector.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise CollectorBusy(
                "another collector is running on this data folder", data_dir=str(self.data_dir)
            ) from exc
        self._lock_file = handle

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Bind, start the runner, serve; returns the bound port (useful with port 0)."""
        where = f"{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}"
        if self.tls is None:
            bound = int(self.server.add_insecure_port(where))
        else:
            bound = int(self.server.add_secure_port(where, self.tls.credentials()))
        if bound == 0:
            raise PermanentError("could not bind the collector port", address=where)
        self.port = bound
        self.runner.start()
        self.server.start()
        log.info(
            "collector serving on %s (%s), %d %s simulation process(es), data in %s",
            self.address,
            "plaintext" if self.tls is None else "mTLS",
            self.workers,
            self.backend.capabilities().name,
            self.data_dir,
        )
        return bound

    def stop(self, grace_s: float = 25.0) -> None:
        """Finish or checkpoint running episodes, then stop serving. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("collector stopping: up to %.0fs for running episodes", grace_s)
        # Watchers keep being served while the last episodes finish and are recorded.
        self.runner.shutdown(grace_s)
        self.server.stop(grace=3.0).wait()
        self.store.close()
        self.backend.close()
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("collector stopped")

    def wait(self) -> None:
        self._stopped.wait()
