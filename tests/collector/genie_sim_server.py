"""`bp genie-sim serve` as a real process on 127.0.0.1, for the Genie Sim backend's tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BP = Path(sys.executable).with_name("bp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One `bp genie-sim serve` process, stopped (or killed) by its own pid."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        env = {**os.environ, "PIPELINE_ENV": "local", "MUJOCO_GL": "egl"}
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BP), "genie-sim", "serve", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while b"listening on" not in log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"bp genie-sim serve did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
