"""`bp up`: the emulators and every installed service as processes, supervised; Ctrl-C stops
them all."""

from __future__ import annotations

import json
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


def events(root: Path) -> list[dict[str, object]]:
    path = root / "supervisor.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_bp_up_restarts_a_killed_service_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
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
    readyz = f"http://127.0.0.1:{port.group(1)}/readyz"
    with urllib.request.urlopen(readyz, timeout=10) as response:
        assert response.status == 200
    assert (tmp_path / "stack.env").read_text().count("export ") >= 5

    # A service that dies (SIGKILL, as an evicted instance) is restarted on its port, and the
    # crash and the restart are logged where the status page reads them.
    [export] = [e for e in events(tmp_path) if e["service"] == "export"]
    os.kill(int(str(export["pid"])), signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any(
        e["event"] == "restarted" and e["service"] == "export" for e in events(tmp_path)
    ):
        time.sleep(0.2)
    exited, restarted = [e for e in events(tmp_path) if e["service"] == "export"][1:3]
    assert (exited["event"], exited["signal"]) == ("exited", "SIGKILL")
    assert restarted["event"] == "restarted" and restarted["pid"] != export["pid"]
    pids.append(int(str(restarted["pid"])))
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(readyz, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        raise AssertionError("the restarted export service never became ready")
    assert up.poll() is None  # the stack and its emulators stayed up
    status = re.search(r"status page: http://127.0.0.1:(\d+)/\?token=([\w-]+)", output)
    assert status is not None, output
    port_, token = status.groups()
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port_}/api/stack", headers={"Authorization": f"Bearer {token}"}
    )
    stack = json.loads(urllib.request.urlopen(asked, timeout=10).read())
    assert stack["services"]["export"]["restarts"] == 1
    assert stack["services"]["export"]["pid"] == restarted["pid"]

    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "bp up left processes running"
