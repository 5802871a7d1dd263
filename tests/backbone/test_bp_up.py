"""`bp up`: the emulators and every installed service as processes; Ctrl-C stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.emulators


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its parent is gone too
        return stat.read().split()[2] != "Z"


def test_bp_up_starts_the_stack_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    up = subprocess.Popen(
        [sys.executable, "-m", "bp_common.cli", "up", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert up.stdout is not None
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "stack is up" in line:
            break
    output = "".join(lines)
    assert "stack is up" in output, output
    pids = [int(p) for p in re.findall(r"pid (\d+)", output)]
    assert len(pids) >= 4  # three emulators and at least the export service
    port = re.search(r"service export: pid \d+, push http://127.0.0.1:(\d+)/push", output)
    assert port is not None, output
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/readyz", timeout=10) as response:
        assert response.status == 200
    assert (tmp_path / "stack.env").read_text().count("export ") >= 5

    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "bp up left processes running"
