"""The emulator harness: loud failures naming the emulator, loopback only, whole-group shutdown."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest
from bp_ops.emulators import (
    FIRESTORE,
    PUBSUB,
    STORAGE,
    EmulatorError,
    EmulatorStack,
    _group_alive,
    start_fake_gcs,
    start_firestore,
    start_pubsub,
)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_missing_binary_fails_naming_the_emulator(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="pubsub emulator is not installed"):
        start_pubsub(tmp_path, binary=tmp_path / "no-such-launcher")
    with pytest.raises(EmulatorError, match="firestore emulator is not installed"):
        start_firestore(tmp_path, binary=tmp_path / "no-such-launcher")
    with pytest.raises(EmulatorError, match="storage emulator is not installed"):
        start_fake_gcs(tmp_path, binary=tmp_path / "no-such-binary")


def test_an_emulator_that_dies_fails_with_its_exit_code_and_log(tmp_path: Path) -> None:
    broken = script(tmp_path / "broken", 'echo "Error: port already in use" >&2\nexit 3\n')
    process = start_firestore(tmp_path / "logs", binary=broken)
    try:
        with pytest.raises(EmulatorError) as raised:
            process.wait_ready(timeout=10)
    finally:
        process.stop()
    message = str(raised.value)
    assert "firestore emulator exited with code 3" in message
    assert "port already in use" in message


def test_an_emulator_that_never_answers_times_out_loudly(tmp_path: Path) -> None:
    silent = script(tmp_path / "silent", "echo booting forever\nexec sleep 60\n")
    process = start_pubsub(tmp_path / "logs", binary=silent)
    try:
        with pytest.raises(EmulatorError) as raised:
            process.wait_ready(timeout=0.5)
    finally:
        process.stop()
    assert "pubsub emulator did not answer" in str(raised.value)
    assert "booting forever" in str(raised.value)


def test_stop_ends_the_whole_process_group_including_forked_children(tmp_path: Path) -> None:
    # Like the Firestore launcher: a shell whose real work runs in a child process.
    launcher = script(
        tmp_path / "launcher",
        f"sleep 60 &\necho $! > {tmp_path}/child.pid\ntrap '' TERM\nwait\n",
    )
    process = start_pubsub(tmp_path / "logs", binary=launcher)
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int(pid_file.read_text())
    process.stop(grace=0.5)  # the launcher ignores SIGTERM: SIGKILL must follow
    assert process.process.poll() is not None
    assert not _group_alive(process.process.pid)
    assert not _running(child)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its reaper (orphans are reaped by init, eventually)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.emulators
def test_the_stack_listens_on_loopback_only_and_exports_its_addresses(
    emulators: EmulatorStack,
) -> None:
    env = emulators.env()
    assert env["PUBSUB_EMULATOR_HOST"] == emulators.pubsub_host
    assert env["FIRESTORE_EMULATOR_HOST"] == emulators.firestore_host
    assert env["STORAGE_EMULATOR_HOST"] == f"http://{emulators.storage_host}"
    assert env["GOOGLE_CLOUD_PROJECT"] == emulators.project
    ports = {name: p.port for name, p in emulators.processes.items()}
    assert set(ports) == {PUBSUB, FIRESTORE, STORAGE}
    assert len(set(ports.values())) == 3
    for name, port in ports.items():
        assert getattr(emulators, f"{name}_host") == f"127.0.0.1:{port}"
        assert _listening_addresses(port) == {"127.0.0.1"}, name


def test_a_stack_stops_everything_it_started(tmp_path: Path) -> None:
    with EmulatorStack(tmp_path, emulators=[STORAGE]) as stack:
        process = stack.processes[STORAGE]
        assert listening(process.port)
        assert set(stack.env()) == {"GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST"}
        with pytest.raises(EmulatorError, match="pubsub emulator is not running"):
            _ = stack.pubsub_host
    assert stack.processes == {}
    assert not _group_alive(process.process.pid)
    assert not listening(process.port)
    assert (tmp_path / "storage.log").exists()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on port, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
            else:
                words = [bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, 32, 8)]
                text = socket.inet_ntop(socket.AF_INET6, b"".join(words))
                found.add(text.removeprefix("::ffff:"))  # Java binds IPv4 as v4-mapped v6
    return found
