"""`bp up` started as a user starts it, in its own process, for the tests that need the whole
local stack: it returns once the stack says it is up, with what it printed and its stack.env.

What `bp up` prints afterwards is read as it comes (a pipe nobody reads fills, and a full pipe
blocks the stack mid-write, even while it stops). `stop` presses Ctrl-C and, should the stack not
exit in time, shows where it hangs (faulthandler on SIGUSR1) and kills every process it started,
so one stuck stack never loads the rest of the suite."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Started:
    process: subprocess.Popen[str]
    root: Path
    printed: list[str]
    """What `bp up` printed: until the stack was up, then on as it prints."""
    env: dict[str, str]
    """The stack's client environment, from the stack.env it wrote."""
    _drain: threading.Thread | None = field(default=None, repr=False)

    def follow(self) -> None:
        """Keep reading what the stack prints, in the background."""
        stream = self.process.stdout
        assert stream is not None
        self._drain = threading.Thread(target=lambda: self.printed.extend(stream), daemon=True)
        self._drain.start()

    def pids(self) -> set[int]:
        """Every process the stack started (or restarted), by the pids it printed and logged."""
        found = {int(p) for p in re.findall(r"pid (\d+)", "".join(self.printed))}
        events = self.root / "supervisor.jsonl"
        if events.exists():
            for line in events.read_text().splitlines():
                pid = json.loads(line).get("pid")
                if pid is not None:
                    found.add(int(pid))
        return found

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as a user stops it; returns its exit code. A stack that does not exit within
        `timeout_s` fails the caller with its threads' stacks, after everything is killed."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # `bp` dumps its threads' stacks
            time.sleep(2)
            for pid in self.pids() | {self.process.pid}:
                for kill in (os.killpg, os.kill):  # services lead their own process group
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(pid, signal.SIGKILL)
            self.process.wait(10)
            if self._drain is not None:
                self._drain.join(5)
            tail = "".join(self.printed)[-8000:]
            raise AssertionError(
                f"bp up did not exit within {timeout_s:.0f} s of Ctrl-C; killed it. It printed:\n"
                f"{tail}"
            ) from None


def start_bp_up(root: Path, env: dict[str, str], *options: str) -> Started:
    """`bp up --out ROOT [options]` with `env` added to this process's environment, minus any
    emulator addresses (the stack starts its own)."""
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bp_common.cli", "up", *options, "--out", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment | env,
    )
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if "stack is up" in line:
            break
    assert "stack is up" in "".join(printed), "".join(printed)
    stack_env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (root / "stack.env").read_text().splitlines()
    )
    started = Started(process, root, printed, stack_env)
    started.follow()
    return started
