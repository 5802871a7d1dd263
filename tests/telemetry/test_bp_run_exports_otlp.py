"""`bp run` with the standard OTEL_* variables pointing at a receiver on loopback: metrics and
one trace per run arrive there, from the run and from the collector it starts, over OTLP/gRPC."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.telemetry.otlp_receiver import OtlpReceiver

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kitchen_table"
STAGES = ("export", "submit", "collect", "import", "upload")


def test_bp_run_sends_its_metrics_and_one_trace_per_run_to_the_otlp_endpoint(
    tmp_path: Path,
) -> None:
    receiver = OtlpReceiver()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BP_", "OTEL_"))}
        env |= {"PIPELINE_ENV": "local", "BP_ROBOTS": "franka_panda", "MUJOCO_GL": "egl"}
        env |= {"BP_EPISODE_WIDTH": "64", "BP_EPISODE_HEIGHT": "64", "BP_EPISODE_FPS": "10"}
        env |= receiver.environment("grpc")
        done = subprocess.run(
            [sys.executable, "-m", "bp_common.cli", "run", str(EXAMPLE), "--out", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        run_id = done.stdout.split(" -> run ")[1].split()[0]
        # The process flushed before it exited; the collector it started did so when it stopped.
        deadline = time.monotonic() + 30
        while "bp-collector" not in {p.service for p in receiver.received.points}:
            assert time.monotonic() < deadline, "the collector's metrics never arrived"
            time.sleep(0.5)
    finally:
        receiver.close()

    received = receiver.received
    assert received.protocols >= {"metrics/grpc", "traces/grpc"}
    handled = [s for s in received.spans if ("bp.run_id", run_id) in s.attributes]
    assert sorted(dict(s.attributes)["bp.stage"] for s in handled) == sorted(STAGES)
    assert len({s.trace_id for s in handled}) == 1, "one trace per run"
    assert {s.service for s in handled} == {"bp-embedded"}

    labels = received.metric_labels()
    assert {dict(x)["stage"] for x in labels["bp.stage.messages"]} == set(STAGES)
    assert any(dict(x).get("robot") == "franka_panda" for x in labels["bp.collection.episodes"])
    assert "bp.run.duration" in labels
    assert {p.service for p in received.points} == {"bp-embedded", "bp-collector"}
