"""Cost controls at planning, before any simulation: a run over its size caps is refused for good
before any shard is published; runs at once are capped per scene and per project."""

from __future__ import annotations

from pathlib import Path

from bp_common.contracts.envelope import encode
from bp_common.ledger import StageState
from bp_common.ledger.admissions import PROJECT_POOL
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.stage import RunRef
from bp_submit.caps import ConcurrentRuns

from tests.submit.conftest import dead_letters, deliver_next, pipeline, tiny
from tests.submit.test_submit_stage import _exported_event

TASKS = ["pick_cube", "pick_mug", "place_bottle"]
TWO_ROBOTS = {
    "schema_version": 1,
    "scene_id": "kitchen_table",
    "tasks": [{"task_id": t} for t in TASKS],
    "robots": [
        {"robot": r, "base_pose": {"position": [0, 0, 0]}, "tasks": TASKS}
        for r in ("franka_panda", "ur5e")
    ],
}


def test_a_run_planning_more_episodes_than_its_cap_is_refused_before_any_shard(
    tmp_path: Path,
) -> None:
    config = tiny(episodes_per_task=2, max_run_episodes=11)
    p = pipeline(tmp_path, config)
    event = _exported_event(p, tmp_path, TWO_ROBOTS)
    p.bus.publish(encode(event, {}))
    verdict = deliver_next(p, "submit")
    assert verdict.outcome is Outcome.DEAD_LETTER and verdict.error is not None
    assert verdict.error.kind == "RunOverCap" and verdict.error.permanent
    assert "12 episodes" in verdict.error.message and "BP_MAX_RUN_EPISODES" in verdict.error.message
    record = p.ports.ledger.get(event.run_id)
    assert record is not None and record.stages["submit"].state is StageState.FAILED
    assert dead_letters(p, "submit") == 1
    assert p.bus.published("collection-shards") == []
    assert p.ports.ledger.shards.get(event.run_id) is None
    assert p.ports.ledger.admissions.admitted(PROJECT_POOL) == []  # it left the cap


def test_a_run_cut_into_more_shards_than_its_cap_is_refused(tmp_path: Path) -> None:
    p = pipeline(tmp_path, tiny(episodes_per_task=4, episodes_per_shard=1, max_run_shards=23))
    event = _exported_event(p, tmp_path, TWO_ROBOTS)
    p.bus.publish(encode(event, {}))
    verdict = deliver_next(p, "submit")
    assert verdict.error is not None and verdict.error.kind == "RunOverCap"
    assert "24 shards" in verdict.error.message and "BP_MAX_RUN_SHARDS" in verdict.error.message


def test_runs_at_once_are_capped_per_scene_and_per_project(tmp_path: Path) -> None:
    config = tiny(max_concurrent_runs=2, max_concurrent_runs_per_scene=1)
    p = pipeline(tmp_path, config)
    caps = ConcurrentRuns(config)

    def admit(scene: str, run: str) -> str | None:
        return caps.admit(p.ports, p.settings, RunRef(scene, run))

    assert admit("kitchen", "run-a") is None
    same_scene = admit("kitchen", "run-b")
    assert same_scene is not None and "run-a" in same_scene
    assert "BP_MAX_CONCURRENT_RUNS_PER_SCENE=1" in same_scene
    assert p.ports.ledger.admissions.admitted(PROJECT_POOL) == ["run-a"]  # run-b holds nothing
    assert admit("pantry", "run-c") is None
    project = admit("garage", "run-d")
    assert project is not None and "BP_MAX_CONCURRENT_RUNS=2" in project
    caps.release(p.ports, p.settings, RunRef("kitchen", "run-a"))
    assert admit("kitchen", "run-b") is None
