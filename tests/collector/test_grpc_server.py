"""`bp collector serve` as a process: channel security rules, SIGTERM with running episodes,
and a restarted collector that knows its jobs and finishes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import typer
from bp_collector.cli import collector
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.service.server import CollectorBusy, CollectorServer, wants_plaintext
from bp_collector_api import collector_pb2 as pb
from bp_collector_api import collector_pb2_grpc
from bp_common.config import PipelineEnv
from bp_common.errors import UnsafeConfiguration
from typer.testing import CliRunner

# The command alone, as `bp collector` runs it, without loading every other service's commands.
SERVE = [
    sys.executable,
    "-c",
    "import typer; from bp_collector.cli import collector; typer.run(collector)",
    "serve",
]


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(collector)
    return app


@pytest.mark.parametrize(
    ("env", "host", "requested", "plaintext"),
    [
        (PipelineEnv.LOCAL, "127.0.0.1", None, True),
        (PipelineEnv.LOCAL, "::1", True, True),
        (PipelineEnv.LOCAL, "localhost", False, False),
        (PipelineEnv.LOCAL, "0.0.0.0", None, False),
        (PipelineEnv.DEV, "127.0.0.1", None, False),
        (PipelineEnv.PRODUCTION, "0.0.0.0", None, False),
    ],
)
def test_plaintext_only_in_local_on_loopback(
    env: PipelineEnv, host: str, requested: bool | None, plaintext: bool
) -> None:
    assert wants_plaintext(env, host, requested) is plaintext


@pytest.mark.parametrize(
    ("env", "host"), [(PipelineEnv.LOCAL, "0.0.0.0"), (PipelineEnv.STAGING, "127.0.0.1")]
)
def test_asking_for_plaintext_elsewhere_is_refused(env: PipelineEnv, host: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="plaintext gRPC is refused"):
        wants_plaintext(env, host, True)


def test_serve_refuses_plaintext_off_loopback_and_tls_without_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_ENV", "local")
    result = CliRunner().invoke(
        cli(), ["serve", "--host", "0.0.0.0", "--plaintext", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "plaintext gRPC is refused on 0.0.0.0" in result.output
    monkeypatch.setenv("PIPELINE_ENV", "production")
    monkeypatch.setenv("BP_SECRETS_DIR", str(tmp_path / "no-secrets"))
    result = CliRunner().invoke(cli(), ["serve", "--port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    for name in ("collector-server-key", "collector-server-cert", "collector-client-ca"):
        assert name in result.output


def test_one_collector_per_data_folder(tmp_path: Path) -> None:
    first = CollectorServer(tmp_path, port=0, tls=None, workers=1)
    try:
        with pytest.raises(CollectorBusy):
            CollectorServer(tmp_path, port=0, tls=None, workers=1)
    finally:
        first.stop(grace_s=1)


def start_collector(
    data_dir: Path, log: Path, grace_s: float = 20
) -> tuple[subprocess.Popen[bytes], str]:
    port_file = data_dir.parent / "port"
    port_file.unlink(missing_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                *SERVE,
                "--port",
                "0",
                "--workers",
                "2",
                "--data-dir",
                str(data_dir),
                "--port-file",
                str(port_file),
                "--grace",
                str(grace_s),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PIPELINE_ENV": "local"},
        )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return process, f"127.0.0.1:{port_file.read_text().strip()}"


def stub_on(address: str) -> collector_pb2_grpc.CollectorStub:
    return collector_pb2_grpc.CollectorStub(  # type: ignore[no-untyped-call]
        grpc.insecure_channel(address)
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("grace_s", [20.0, 0.0])
def test_sigterm_finishes_or_checkpoints_running_episodes_and_a_restart_finishes_the_job(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], grace_s: float
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "collector.log"
    process, address = start_collector(data_dir, log, grace_s)
    processes.append(process)
    stub = stub_on(address)
    graph, config = tabletop_scene("franka_panda")
    start = pb.StartCollectionRequest(
        job_key="run-restart/franka_panda",
        scene_id=graph["scene_id"],
        robot="franka_panda",
        scene_graph_json=json.dumps(graph).encode(),
        task_config_json=json.dumps(config).encode(),
        episodes_per_task=6,
        seed=1,
        camera=pb.CameraSpec(width=64, height=64, fps=10),
        max_episode_seconds=1.5,
    )
    job = stub.StartCollection(start, timeout=10).job
    deadline = time.monotonic() + 60
    recorded = 0
    while recorded < 2:
        assert time.monotonic() < deadline
        job = stub.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=5)
        recorded = job.progress.episodes_recorded
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    text = log.read_text()
    assert "collector stopping" in text and "collector stopped" in text
    # With time to spare the running episodes finish; without, they go back to the queue.
    assert ("checkpointed as pending" in text) is (grace_s == 0)

    process, address = start_collector(data_dir, log)
    processes.append(process)
    stub = stub_on(address)
    restarted = stub.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=5)
    assert restarted.job_key == "run-restart/franka_panda"
    assert restarted.progress.episodes_recorded >= 2
    again = stub.StartCollection(start, timeout=10)
    assert not again.created and again.job.job_id == job.job_id
    episodes, final = [], None
    for update in stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=120):
        if update.HasField("episode"):
            episodes.append(update.episode.episode_id)
        final = update
        if update.WhichOneof("event") == "state" and update.state == pb.JOB_STATE_SUCCEEDED:
            break
    assert final is not None and final.job.state == pb.JOB_STATE_SUCCEEDED
    assert len(episodes) == len(set(episodes)) == 12  # every planned episode, each once
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
