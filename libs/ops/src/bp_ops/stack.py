"""The local stack behind `bp up`: emulators, topology, and each stage as its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bp_common.topology import ROUTE_BY_STAGE

from bp_ops.emulators import LOOPBACK, EmulatorError, EmulatorStack, free_port

PROJECT = "bp-local"
BUCKET = "bp-scenes"
FIREBASE_BUCKET = "bp-datasets"


@dataclass
class ServiceProcess:
    stage: str
    spec: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None

    @property
    def push_endpoint(self) -> str | None:
        return f"http://{LOOPBACK}:{self.port}/push" if self.port else None

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole service, as a crash or an evicted instance would end it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class LocalStack:
    """`stages` maps a stage name to what `bp serve|worker` loads (a name or module:ATTRIBUTE)."""

    def __init__(
        self,
        root: Path,
        stages: list[str] | dict[str, str],
        *,
        project: str = PROJECT,
        ack_deadline_s: int = 60,
        max_delivery_attempts: int = 5,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 10.0,
        extra_env: dict[str, str] | None = None,
        status_page: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.stages = stages if isinstance(stages, dict) else {s: s for s in stages}
        self.project = project
        self.ack_deadline_s = ack_deadline_s
        self.max_delivery_attempts = max_delivery_attempts
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_env = extra_env or {}
        self.emulators = EmulatorStack(self.root / "logs", project=project)
        self.services: dict[str, ServiceProcess] = {}
        self.status_page = status_page
        self.status: ServiceProcess | None = None
        self.status_token: str | None = None

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client_env(self) -> dict[str, str]:
        """What a client (tests, `bp runs`, `bp dlq`) needs to talk to this stack."""
        return {
            **self.emulators.env(),
            "PIPELINE_ENV": "local",
            "BP_BACKEND": "cloud",
            "BP_LEDGER_BACKEND": "firestore",
            "BP_PROJECT_ID": self.project,
            "BP_BUCKET": BUCKET,
            "BP_FIREBASE_BUCKET": FIREBASE_BUCKET,
            "BP_SECRETS_DIR": str(self.root / "secrets"),
        }

    def start(self) -> None:
        from bp_common.blobstore.gcs import ensure_bucket, make_storage_client
        from bp_common.bus.pubsub import ensure_topology
        from google.cloud import pubsub_v1

        self.emulators.start()
        os.environ.update(self.emulators.env())
        (self.root / "secrets").mkdir(parents=True, exist_ok=True)
        storage = make_storage_client(self.project)
        for bucket in (BUCKET, FIREBASE_BUCKET):
            ensure_bucket(storage, bucket)
        ports = {s: free_port() for s in self.stages if ROUTE_BY_STAGE[s].delivery == "push"}
        ensure_topology(
            pubsub_v1.PublisherClient(),
            pubsub_v1.SubscriberClient(),
            self.project,
            push_endpoints={s: f"http://{LOOPBACK}:{p}/push" for s, p in ports.items()},
            max_delivery_attempts=self.max_delivery_attempts,
            min_backoff_s=self.min_backoff_s,
            max_backoff_s=self.max_backoff_s,
            ack_deadline_s=self.ack_deadline_s,
        )
        for stage in self.stages:
            self.start_service(stage, ports.get(stage))
        if self.status_page:
            self.start_status_page()

    def start_service(self, stage: str, port: int | None = None) -> ServiceProcess:
        route = ROUTE_BY_STAGE[stage]
        if port is None and stage in self.services:
            port = self.services[stage].port
        spec = self.stages[stage]
        command = [sys.executable, "-m", "bp_common.cli"]
        command += ["serve", spec, "--port", str(port)] if port else ["worker", spec]
        env = {
            **os.environ,
            **self.client_env(),
            "BP_STAGE": stage,
            "BP_DEAD_LETTER_TOPIC": route.dead_letter_topic,
            "BP_MAX_DELIVERY_ATTEMPTS": str(self.max_delivery_attempts),
            "BP_ACK_DEADLINE_S": str(self.ack_deadline_s),
            "BP_LEASE_EXTENSION_S": str(self.ack_deadline_s),
            **self.extra_env,
        }
        log = self.root / "logs" / f"{stage}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        service = ServiceProcess(stage, spec, process, log, port)
        self.services[stage] = service
        if port:
            self._wait_healthy(service)
        return service

    def start_status_page(self) -> ServiceProcess:
        """`bp status serve` on a free port, reading this stack's ledger, queues and bucket.

        Its access token is made here and handed over in a file only this user can read, so
        `describe` can print the address that carries it.
        """
        from bp_ops.status import new_token

        port = free_port()
        log = self.root / "logs" / "status.log"
        self.status_token = new_token()
        token_file = self.root / "status.token"
        token_file.unlink(missing_ok=True)
        descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.status_token)
        command = [sys.executable, "-m", "bp_common.cli", "status", "serve", "--port", str(port)]
        command += ["--token-file", str(token_file)]
        with log.open("ab") as handle:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.client_env()},
                start_new_session=True,
            )
        self.status = ServiceProcess("status", "status page", process, log, port)
        self._wait_healthy(self.status)
        return self.status

    def _wait_healthy(self, service: ServiceProcess, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{LOOPBACK}:{service.port}/healthz"
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        tail = service.log.read_text(errors="replace")[-3000:]
        raise EmulatorError(f"service {service.stage} did not become healthy:\n{tail}")

    def describe(self) -> list[str]:
        lines = [
            f"project {self.project}; buckets gs://{BUCKET} (scenes),"
            f" gs://{FIREBASE_BUCKET} (datasets)"
        ]
        lines += [f"  {k}={v}" for k, v in self.emulators.env().items()]
        lines += [
            f"  emulator {name}: pid {e.process.pid}, {e.host}, log {e.log_path}"
            for name, e in self.emulators.processes.items()
        ]
        for s in self.services.values():
            how = (
                f"push {s.push_endpoint}"
                if s.port
                else f"pull {ROUTE_BY_STAGE[s.stage].subscription}"
            )
            lines.append(f"  service {s.stage}: pid {s.process.pid}, {how}, log {s.log}")
        if self.status is not None:
            lines.append(
                f"  status page: {self.status_url},"
                f" pid {self.status.process.pid}, log {self.status.log}"
            )
        env_file = self.root / "stack.env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in self.client_env().items()))
        lines.append(f"for bp runs / bp dlq against this stack: source {env_file}")
        lines.append(
            f"drop a scene: bp drop SCENE_FOLDER (or gcloud storage cp scene.usda "
            f"gs://{BUCKET}/scenes/SCENE_ID/scene.usda, see README)"
        )
        return lines

    @property
    def status_url(self) -> str:
        """The status page's address with its access token (open it once; a cookie keeps it)."""
        assert self.status is not None and self.status_token is not None
        return f"http://{LOOPBACK}:{self.status.port}/?token={self.status_token}"

    def wait(self) -> None:
        """Block until a service dies (and say which) or the caller is interrupted."""
        while True:
            for s in [*self.services.values(), *([self.status] if self.status else [])]:
                if s.process.poll() is not None:
                    raise EmulatorError(
                        f"service {s.stage} exited with {s.process.returncode}; log {s.log}"
                    )
            time.sleep(1.0)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
        for service in self.services.values():
            service.stop()
        self.emulators.stop()
