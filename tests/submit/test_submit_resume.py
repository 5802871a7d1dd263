"""A submit process killed in the middle of a job: the redelivered message re-attaches to the
same collector job and stores every episode once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bp_collector.service.server import CollectorServer
from bp_common.ledger import StageState
from bp_export.stage import EXPORT
from bp_ops.embedded import EmbeddedPipeline

from tests.submit.conftest import (
    KITCHEN,
    TINY_ENV,
    exported_task_config,
    pipeline,
    settings,
    tiny,
)

# The submit stage alone in its own process, on the embedded folder the test prepared.
SUBMIT_PROCESS = """
import sys
from pathlib import Path
from bp_common.config import Settings
from bp_ops.embedded import EmbeddedPipeline, EmbeddedRun
from bp_submit.stage import SUBMIT
p = EmbeddedPipeline(Path(sys.argv[1]), Settings(), {"submit": SUBMIT})
p.drain(EmbeddedRun(sys.argv[2], sys.argv[3]))
"""
EPISODES_PER_TASK = 5


def stored_manifests(p: EmbeddedPipeline, prefix: str) -> dict[str, int]:
    return {b.key: b.generation for b in p.ports.blobs.list(prefix)
            if b.key.endswith("/episode.json")}


def test_a_killed_submit_resumes_on_the_same_job_without_duplicate_episodes(
    tmp_path: Path, collector: CollectorServer
) -> None:
    root = tmp_path / "run"
    exporter = EmbeddedPipeline(root, settings(), {"export": EXPORT})
    run = exporter.drain(exporter.drop_scene(KITCHEN))
    prefix = f"runs/kitchen_table/{run.run_id}/episodes/franka_panda/"
    env = {
        **os.environ,
        **TINY_ENV,
        "PIPELINE_ENV": "local",
        "BP_EPISODES_PER_TASK": str(EPISODES_PER_TASK),
        "BP_EPISODE_SECONDS": "3",
        "BP_EMBEDDED_COLLECTOR": "never",
        "BP_COLLECTOR_ADDRESS": collector.address,
        "BP_COLLECTOR_INSECURE": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SUBMIT_PROCESS, str(root), run.scene_id, run.run_id],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(stored_manifests(exporter, prefix)) < 2:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no episode arrived"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    before = stored_manifests(exporter, prefix)
    assert not exporter.ports.blobs.exists(prefix + "manifest.json"), "killed too late"
    job_id = json.loads(exporter.ports.blobs.read_bytes(prefix + "job.json"))["job_id"]

    resumed = pipeline(root, tiny(episodes_per_task=EPISODES_PER_TASK, episode_seconds=3,
                                  embedded_collector="never"),
                       collector_address=collector.address, collector_insecure=True)
    resumed.drain(run)

    record = resumed.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["submit"].state is StageState.SUCCEEDED
    assert record.stages["submit"].attempts == 2
    manifest = json.loads(resumed.ports.blobs.read_bytes(prefix + "manifest.json"))
    assert manifest["job"]["job_id"] == job_id  # re-attached, no second job
    with collector.store._lock:
        (jobs,) = collector.store._conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
    assert jobs == 1
    tasks = exported_task_config(resumed, "kitchen_table", run.run_id)["robots"][0]["tasks"]
    ids = [e["episode_id"] for e in manifest["episodes"]]
    assert len(ids) == len(set(ids)) == len(tasks) * EPISODES_PER_TASK
    after = stored_manifests(resumed, prefix)
    assert sorted(after) == sorted(f"{prefix}{i}/episode.json" for i in ids)
    # Episodes stored before the kill were not fetched again.
    assert {k: after[k] for k in before} == before


def test_a_job_outlasting_the_follow_budget_gives_the_message_back_and_re_attaches(
    tmp_path: Path, collector: CollectorServer
) -> None:
    """A delivery never holds its message past the budget (kept below the pull lease): it ends
    with a transient error, and the next delivery picks the same job up."""
    from tests.submit.conftest import deliver_next

    options = {"embedded_collector": "never", "episodes_per_task": 2}
    hasty = pipeline(tmp_path, tiny(follow_budget_s=0.3, **options),
                     collector_address=collector.address, collector_insecure=True)
    run = hasty.drop_scene(KITCHEN)
    deliver_next(hasty, "export")
    started = time.monotonic()
    verdict = deliver_next(hasty, "submit")
    assert time.monotonic() - started < 5
    assert verdict.error is not None and verdict.error.kind == "CollectionInProgress"
    assert not verdict.error.permanent
    prefix = f"runs/kitchen_table/{run.run_id}/episodes/franka_panda/"
    job_id = json.loads(hasty.ports.blobs.read_bytes(prefix + "job.json"))["job_id"]

    patient = pipeline(tmp_path, tiny(**options), collector_address=collector.address,
                       collector_insecure=True)
    patient.drain(run)
    record = patient.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["submit"].state is StageState.SUCCEEDED
    assert record.stages["submit"].attempts == 2
    manifest = json.loads(patient.ports.blobs.read_bytes(prefix + "manifest.json"))
    assert manifest["job"]["job_id"] == job_id
