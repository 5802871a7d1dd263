"""`bp run` killed in the middle of a stage resumes on the next `bp run` without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bp_common.bus.local import LocalBus
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.sqlite import SqliteLedgerStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table" / "scene.usda"


# The resume under test is export's: the later stages run small, to keep the test short, and
# every valid episode passes the quality gates. The run id seeds the randomisation, and one of
# the Panda's three episodes touching something (about 1 in 75 episodes over seeds 100-124)
# would hold its dataset back at the collision-free gate and end the run `quality_failed`.
SMALL = {
    "BP_ROBOTS": "franka_panda",
    "BP_EPISODES_PER_TASK": "1",
    "BP_EPISODE_WIDTH": "64",
    "BP_EPISODE_HEIGHT": "64",
    "BP_EPISODE_FPS": "10",
    **{
        f"BP_QUALITY_{gate}": "0"
        for gate in ("MIN_SCORE", "MIN_SUCCESS_RATE", "MIN_COLLISION_FREE_RATE", "MIN_PASS_RATE")
    },
    "BP_QUALITY_REQUIRE_SUCCESS": "false",
}


def bp_run(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bp_common.cli", "run", str(EXAMPLE), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **SMALL},
    )


def test_a_killed_run_resumes_and_commits_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = bp_run(out)
    deadline = time.monotonic() + 120
    running = False
    while time.monotonic() < deadline and not running:
        if (out / "ledger.sqlite").exists():
            runs = RunLedger(SqliteLedgerStore(out / "ledger.sqlite")).list()
            running = bool(runs) and runs[0].stages.get("export") is not None
        time.sleep(0.05)
    assert running, "export never started"
    first.send_signal(signal.SIGKILL)
    first.wait()

    second = bp_run(out)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    [run] = RunLedger(SqliteLedgerStore(out / "ledger.sqlite")).list()
    assert run.stages["export"].state is StageState.SUCCEEDED
    assert run.stages["export"].attempts == 2  # the killed delivery counted, then the resumed one
    assert len(LocalBus(out / "bus.sqlite").published("scenes-exported")) == 1
    markers = list(
        (out / "bucket" / "runs" / run.scene_id / run.run_id / "export").glob(
            "export_manifest.json"
        )
    )
    assert len(markers) == 1
