"""A fake-gcs-server of a test's own, on disk, that can be stopped and started on the same port."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

from bp_ops.emulators import LOOPBACK, EmulatorProcess, fake_gcs_server_binary, free_port


class OwnFakeGcs:
    """fake-gcs-server with the filesystem backend, so objects outlive a restart."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.process: EmulatorProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 20.0) -> OwnFakeGcs:
        log_path = self.root / "fake-gcs.log"
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            str(fake_gcs_server_binary()),
            "-scheme", "http",
            "-host", LOOPBACK,
            "-port", str(self.port),
            "-backend", "filesystem",
            "-filesystem-root", str(self.root / "data"),
            "-external-url", self.url,
            "-public-host", f"{LOOPBACK}:{self.port}",
            "-log-level", "warn",
        ]  # fmt: skip
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.process = EmulatorProcess(
            "storage",
            self.port,
            popen,
            log_path,
            f"{self.url}/_internal/healthcheck",
            lambda status, _: status == 200,
        )
        self.process.wait_ready(timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=2.0)
            self.process = None


class BlackHole:
    """A TCP listener that accepts connections and never answers: a server that hangs."""

    def __init__(self, port: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, port or 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)  # never read from, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self.sock.close()
