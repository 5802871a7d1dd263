"""`bp up`: the emulators and every installed service as processes, supervised; Ctrl-C stops
them all."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.bp_up import start_bp_up

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
    up = start_bp_up(tmp_path, {})
    output = "".join(up.printed)
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
    assert up.process.poll() is None  # the stack and its emulators stayed up
    status = re.search(r"status page: http://127.0.0.1:(\d+)/\?token=([\w-]+)", output)
    assert status is not None, output
    port_, token = status.groups()
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port_}/api/stack", headers={"Authorization": f"Bearer {token}"}
    )
    stack = json.loads(urllib.request.urlopen(asked, timeout=10).read())
    assert stack["services"]["export"]["restarts"] == 1
    assert stack["services"]["export"]["pid"] == restarted["pid"]

    assert up.stop(timeout_s=60) == 0
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "bp up left processes running"
