"""`bp run` with the standard OTEL_* variables pointing at a receiver on loopback: metrics and
one trace per run arrive there over OTLP/gRPC, collection's included (its shards are worked in
the run's process)."""

from __future__ import annotations

import os
import subprocess
import sys
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
    finally:
        receiver.close()

    received = receiver.received
    assert received.protocols >= {"metrics/grpc", "traces/grpc"}
    handled = [s for s in received.spans if ("bp.run_id", run_id) in s.attributes]
    worked = sorted(dict(s.attributes)["bp.stage"] for s in handled)
    # one span per stage and run, but collect's per shard (a robot's task here)
    assert [s for s in worked if s != "collect"] == sorted(set(STAGES) - {"collect"})
    assert "collect" in worked
    assert len({s.trace_id for s in handled}) == 1, "one trace per run"
    assert {s.service for s in handled} == {"bp-embedded"}

    labels = received.metric_labels()
    assert {dict(x)["stage"] for x in labels["bp.stage.messages"]} == set(STAGES)
    assert any(dict(x).get("robot") == "franka_panda" for x in labels["bp.collection.episodes"])
    assert "bp.run.duration" in labels
    assert {p.service for p in received.points} == {"bp-embedded"}
