"""The local stack behind `bp up`: emulators, topology, and each stage as its own process,
supervised (bp_ops.supervision): a service that dies is restarted with backoff. With `secure`,
production's security on the emulators (bp_ops.secure_stack): mTLS to a collector of its own,
OIDC on every push, secrets from Secret Manager only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bp_common.ledger.store import utcnow
from bp_common.topology import ROUTE_BY_STAGE

from bp_ops.emulators import (
    LOOPBACK,
    PUBSUB,
    SCENE_UPLOADS_TOPIC,
    EmulatorError,
    EmulatorStack,
    create_topic,
    free_port,
    start_pubsub,
)
from bp_ops.supervision import EVENTS_FILE, StackEvent, StackEvents, Supervisor, now

if TYPE_CHECKING:
    from bp_common.runtime.stage import Ports

    from bp_ops.secure_stack import SecureServices

PROJECT = "bp-local"
BUCKET = "bp-scenes"
FIREBASE_BUCKET = "bp-datasets"
LOCAL_WORK_DEADLINE_S = 1800
COLLECTOR = "collector"
COLLECT = "collect"
# How often the stack looks for stalled runs, and how long a run must be idle to count.
REDRIVE_EVERY_S = 60.0
REDRIVE_STALLED_AFTER_S = 180.0
# How long a stopping service may take to finish (it hands back its message) before SIGKILL.
STOP_GRACE_S = 10.0


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process of the stack in its own session (stopped by its group), output to its log."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


@dataclass
class ServiceProcess:
    stage: str
    spec: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None
    instance: str | None = None
    """Which of the stage's processes (`collect-2`); None for a stage's only one."""

    @property
    def push_endpoint(self) -> str | None:
        return f"http://{LOOPBACK}:{self.port}/push" if self.port else None

    @property
    def name(self) -> str:
        return self.instance or self.stage

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        """SIGTERM the whole service (it finishes or hands back what it holds), no waiting."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole service, as a crash or an evicted instance would end it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def stop_together(services: list[ServiceProcess], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM every service at once, then SIGKILL those still running after one shared grace:
    stopping a stack takes the slowest service's time, not the sum of all."""
    for service in services:
        service.terminate()
    deadline = time.monotonic() + grace
    for service in services:
        try:
            service.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.kill()


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
        secure: bool = False,
        redrive_every_s: float = REDRIVE_EVERY_S,
        redrive_stalled_after_s: float = REDRIVE_STALLED_AFTER_S,
        collectors: int = 1,
        stage_env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.collectors = collectors
        """Collector workers (`bp worker collect` processes) when the collect stage runs."""
        self.stages = stages if isinstance(stages, dict) else {s: s for s in stages}
        self.stage_env = stage_env or {}
        """Settings for one stage's processes only, over `extra_env` (a test's partition)."""
        self.project = project
        self.ack_deadline_s = ack_deadline_s
        self.max_delivery_attempts = max_delivery_attempts
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_env = extra_env or {}
        self.redrive_every_s = redrive_every_s
        self.redrive_stalled_after_s = redrive_stalled_after_s
        # As in production, only objects under scenes/ notify scene-uploads (Terraform's
        # object_name_prefix): the pipeline's own outputs do not flood the export service.
        self.emulators = EmulatorStack(
            self.root / "logs", project=project, event_object_prefix="scenes/"
        )
        self.services: dict[str, ServiceProcess] = {}
        self.status_page = status_page
        self.status: ServiceProcess | None = None
        self.events_path = self.root / EVENTS_FILE
        self.supervisor: Supervisor | None = None
        self.push_endpoints: dict[str, str] = {}
        """Where each push subscription delivers (a signing relay in front when secure)."""
        self.status_token: str | None = None
        self.secure: SecureServices | None = None
        if secure:
            from bp_ops.secure_stack import SecureServices

            # push services work up to LOCAL_WORK_DEADLINE_S: the relay waits that long for them
            timeout_s = LOCAL_WORK_DEADLINE_S + 60
            self.secure = SecureServices(self.root, project, push_timeout_s=timeout_s)
        self.collector: ServiceProcess | None = None
        self.collector_port: int | None = None
        self._redrive_ports: Ports | None = None

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

        self.emulators.start()
        os.environ.update(self.emulators.env())
        (self.root / "secrets").mkdir(parents=True, exist_ok=True)
        storage = make_storage_client(self.project)
        for bucket in (BUCKET, FIREBASE_BUCKET):
            ensure_bucket(storage, bucket)
        ports = {s: free_port() for s in self.stages if ROUTE_BY_STAGE[s].delivery == "push"}
        endpoints = {s: f"http://{LOOPBACK}:{p}/push" for s, p in ports.items()}
        if self.secure is not None:
            self.secure.start()
            endpoints = {s: self.secure.push_endpoint(s, p) for s, p in ports.items()}
        self.push_endpoints = endpoints
        self._ensure_topology(endpoints)
        self.events_path.unlink(missing_ok=True)
        supervisor = Supervisor(StackEvents(self.events_path), self._dead_emulator)
        if self.secure is not None:
            self.collector_port = free_port()
            supervisor.watch(self.start_collector(), lambda: self.start_collector(wait=False))
        for stage in self.stages:
            for name in self.instances(stage):
                service = self.start_service(stage, ports.get(stage), name=name)
                supervisor.watch(service, self._restarter(stage, name))
        if self.status_page:
            supervisor.watch(self.start_status_page(), lambda: self.start_status_page(wait=False))
        supervisor.every(self.redrive_every_s, self._redrive)
        self.supervisor = supervisor

    def _ensure_topology(self, push_endpoints: dict[str, str]) -> None:
        from bp_common.bus.pubsub import ensure_topology
        from google.cloud import pubsub_v1

        ensure_topology(
            pubsub_v1.PublisherClient(),
            pubsub_v1.SubscriberClient(),
            self.project,
            push_endpoints=push_endpoints,
            max_delivery_attempts=self.max_delivery_attempts,
            min_backoff_s=self.min_backoff_s,
            max_backoff_s=self.max_backoff_s,
            ack_deadline_s=self.ack_deadline_s,
        )

    def _revive_pubsub(self) -> list[StackEvent]:
        """Start the Pub/Sub emulator again on its port, as a restarted one comes back: empty.
        Its topics and subscriptions are made again, and every run that is not held is driven
        on at once, since whatever was queued is gone (bp_ops.redrive)."""
        old = self.emulators.processes[PUBSUB]
        old.stop()
        fresh = start_pubsub(self.root / "logs", port=old.port)
        self.emulators.processes[PUBSUB] = fresh
        fresh.wait_ready(self.emulators.timeout)
        create_topic(fresh.host, self.project, SCENE_UPLOADS_TOPIC)
        self._ensure_topology(self.push_endpoints)  # through the signing relays when secure
        event = StackEvent(
            now(), PUBSUB, "emulator_restarted", pid=fresh.process.pid, detail="state lost"
        )
        return [event, *self._redrive(stalled_after_s=0.0)]

    def _redrive(self, stalled_after_s: float | None = None) -> list[StackEvent]:
        """Drive stalled runs on (bp_ops.redrive): the emulator loses a push a kill cut short."""
        from bp_common import wiring
        from bp_common.config import Settings

        from bp_ops.redrive import redrive

        if self._redrive_ports is None:  # the clients are made once, not at every round
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                backend="cloud",
                ledger_backend="firestore",
                project_id=self.project,
                bucket=BUCKET,
                firebase_bucket=FIREBASE_BUCKET,
            )
            self._redrive_ports = wiring.cloud(settings).ports
        ports = self._redrive_ports
        stalled_after = (
            max(self.redrive_stalled_after_s, 3 * self.ack_deadline_s)
            if stalled_after_s is None
            else stalled_after_s
        )
        driven = redrive(
            ports, BUCKET, utcnow(), stalled_after_s=stalled_after, stages=list(self.stages)
        )
        return [
            StackEvent(
                now(),
                item.stage,
                "redriven",
                detail=f"run {item.run_id} idle for {item.idle_s:.0f} s",
            )
            for item in driven
        ]

    def instances(self, stage: str) -> list[str]:
        """The names of the stage's processes: one, or `collectors` collector workers."""
        if stage != COLLECT:
            return [stage]
        return [stage if n == 1 else f"{stage}-{n}" for n in range(1, self.collectors + 1)]

    def _restarter(self, stage: str, name: str) -> Callable[[], ServiceProcess]:
        """Starts the stage's service again on its own port, without waiting for it."""
        return lambda: self.start_service(stage, wait=False, name=name)

    def _dead_emulator(self) -> str | None:
        """The emulator that died for good, if any. Pub/Sub is restarted in place (Cloud
        Pub/Sub does not lose topics, but the emulator keeps them in memory); Firestore and
        fake-gcs-server hold the runs and the blobs, so losing either stops the stack."""
        for name, emulator in list(self.emulators.processes.items()):
            if emulator.process.poll() is None:
                continue
            if name != PUBSUB:
                return name
            try:
                revived = self._revive_pubsub()
            except Exception as exc:
                raise EmulatorError(
                    f"the Pub/Sub emulator died and did not restart: {exc}"
                ) from exc
            if self.supervisor is not None:
                for event in revived:
                    self.supervisor.events.add(event)
                    self.supervisor.say(event.describe())
        return None

    def start_service(
        self, stage: str, port: int | None = None, *, wait: bool = True, name: str | None = None
    ) -> ServiceProcess:
        """Start (or restart, on its port) one process of a stage (`name`, by default the
        stage's); `wait` for a push service to be healthy."""
        route = ROUTE_BY_STAGE[stage]
        name = name or stage
        if port is None and name in self.services:
            port = self.services[name].port
        spec = self.stages[stage]
        command = [sys.executable, "-m", "bp_common.cli"]
        command += ["serve", spec, "--port", str(port)] if port else ["worker", spec]
        env = {
            **os.environ,
            **self.client_env(),
            "BP_STAGE": stage,
            # each process's own folder (a collector worker's run inputs and scratch)
            "BP_DATA_DIR": str(self.root / "data" / name),
            "BP_DEAD_LETTER_TOPIC": route.dead_letter_topic,
            "BP_MAX_DELIVERY_ATTEMPTS": str(self.max_delivery_attempts),
            "BP_ACK_DEADLINE_S": str(self.ack_deadline_s),
            "BP_LEASE_EXTENSION_S": str(self.ack_deadline_s),
            # uvicorn never cuts a push short (Cloud Run does, at the ack deadline): a holder
            # keeps its lease while it works, and redelivered pushes wait for it.
            **({"BP_WORK_DEADLINE_S": str(LOCAL_WORK_DEADLINE_S)} if port else {}),
            **self._security_env(port),
            **self.extra_env,
            **self.stage_env.get(stage, {}),
        }
        log = self.root / "logs" / f"{name}.log"
        process = _spawn(command, env, log)
        service = ServiceProcess(stage, spec, process, log, port, name)
        self.services[name] = service
        if port and wait:
            self._wait_healthy(service)
        return service

    def _security_env(self, push_port: int | None) -> dict[str, str]:
        if self.secure is None:
            return {}
        env = self.secure.env(f"{LOOPBACK}:{self.collector_port}")
        return env | (self.secure.push_env(push_port) if push_port else {})

    def start_collector(self, *, wait: bool = True) -> ServiceProcess:
        """`bp collector serve` on its port, mTLS with the certificates Secret Manager serves
        (the secure stack; otherwise submit starts a loopback collector beside itself)."""
        assert self.collector_port is not None
        command = [sys.executable, "-m", "bp_common.cli", COLLECTOR, "serve"]
        command += ["--port", str(self.collector_port)]
        env = {
            **os.environ,
            **self.client_env(),
            "BP_DATA_DIR": str(self.root / "data" / COLLECTOR),
            **self._security_env(None),
            **self.extra_env,
        }
        log = self.root / "logs" / f"{COLLECTOR}.log"
        process = _spawn(command, env, log)
        self.collector = ServiceProcess(COLLECTOR, COLLECTOR, process, log, self.collector_port)
        if wait:
            self._wait_listening(self.collector)
        return self.collector

    def _wait_listening(self, service: ServiceProcess, timeout: float = 120.0) -> None:
        assert service.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and service.process.poll() is None:
            try:
                with socket.create_connection((LOOPBACK, service.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        tail = service.log.read_text(errors="replace")[-3000:]
        raise EmulatorError(f"{service.stage} did not start listening:\n{tail}")

    def start_status_page(self, *, wait: bool = True) -> ServiceProcess:
        """`bp status serve` on a free port (its own again on a restart), reading this stack's
        ledger, queues, bucket and supervisor events.

        Its access token is made here once and handed over in a file only this user can read, so
        `describe` can print the address that carries it, and it still works after a restart.
        """
        from bp_ops.status import new_token

        port = self.status.port if self.status is not None and self.status.port else free_port()
        log = self.root / "logs" / "status.log"
        token_file = self.root / "status.token"
        if self.status_token is None:
            self.status_token = new_token()
            token_file.unlink(missing_ok=True)
            descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(self.status_token)
        command = [sys.executable, "-m", "bp_common.cli", "status", "serve", "--port", str(port)]
        command += ["--stack-events", str(self.events_path), "--token-file", str(token_file)]
        process = _spawn(command, {**os.environ, **self.client_env()}, log)
        self.status = ServiceProcess("status", "status page", process, log, port)
        if wait:
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
            lines.append(f"  service {s.name}: pid {s.process.pid}, {how}, log {s.log}")
        if self.collector is not None:
            c = self.collector
            lines.append(
                f"  collector: pid {c.process.pid}, mTLS on {LOOPBACK}:{c.port}, log {c.log}"
            )
        if self.secure is not None:
            lines += self.secure.describe()
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
        """Supervise the services until interrupted; raises EmulatorError if an emulator died."""
        assert self.supervisor is not None, "start the stack first"
        try:
            self.supervisor.run()
        except RuntimeError as exc:
            raise EmulatorError(str(exc)) from exc

    def interrupt(self) -> None:
        """End `wait` after the supervisor's current round (safe from a signal handler)."""
        if self.supervisor is not None:
            self.supervisor.stop.set()

    def stop(self) -> None:
        self.interrupt()
        extras = (self.status, self.collector)
        stop_together([*self.services.values(), *(p for p in extras if p is not None)])
        if self.secure is not None:
            self.secure.stop()
        self.emulators.stop()
