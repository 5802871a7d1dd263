"""A collector beside this process, for the embedded default and `bp collect`.

`bp collector serve` runs as a child process on a free loopback port, plaintext (allowed in
`local` on loopback only), with its job store in a data folder, so a killed and restarted run
finds its jobs again. Submit talks to it over gRPC like to any collector; it never imports the
collector's code. The child stops when this process exits, or on its own if this process dies.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bp_submit.errors import CollectorUnavailable

_lock = threading.Lock()
_running: dict[Path, LocalCollector] = {}


@dataclass
class LocalCollector:
    process: subprocess.Popen[bytes]
    address: str
    data_dir: Path
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM (running episodes finish or are checkpointed), then SIGKILL after the grace."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace_s + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def reachable(address: str, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def start_local_collector(
    data_dir: Path, *, workers: int | None = None, timeout_s: float = 60.0
) -> LocalCollector:
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port_file = data_dir / f"port.{os.getpid()}"
    port_file.unlink(missing_ok=True)
    log_path = data_dir / "collector.log"
    command = [
        sys.executable, "-m", "bp_submit.local_collector", "serve",
        "--host", "127.0.0.1", "--port", "0", "--plaintext",
        "--data-dir", str(data_dir), "--port-file", str(port_file), "--exit-with-parent",
    ]
    if workers:
        command += ["--workers", str(workers)]
    env = {**os.environ, "PIPELINE_ENV": "local"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + timeout_s
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise CollectorUnavailable(
                f"the local collector did not start (exit {process.returncode}):\n"
                f"{_log_tail(log_path)}",
                data_dir=str(data_dir),
            )
        time.sleep(0.1)
    port = int(port_file.read_text().strip())
    port_file.unlink(missing_ok=True)
    return LocalCollector(process, f"127.0.0.1:{port}", data_dir, log_path)


def local_collector(data_dir: Path, *, workers: int | None = None) -> LocalCollector:
    """The collector this process runs on `data_dir`, started (again) when it is not running."""
    key = Path(data_dir).resolve()
    with _lock:
        current = _running.get(key)
        if current is None or not current.alive():
            current = start_local_collector(key, workers=workers)
            _running[key] = current
        return current


def stop_local_collectors() -> None:
    with _lock:
        collectors = list(_running.values())
        _running.clear()
    for collector in collectors:
        collector.stop()


atexit.register(stop_local_collectors)


def _run_collector_command() -> None:
    """`bp collector ...` through its entry point alone: another service's command that fails
    to load must not keep the embedded collector from starting."""
    import typer

    found = [
        ep for ep in importlib.metadata.entry_points(group="blueprint.commands")
        if ep.name == "collector"
    ]
    if not found:
        sys.exit("no `collector` command is installed (the bp-collector package is missing)")
    typer.run(found[0].load())


if __name__ == "__main__":
    _run_collector_command()
