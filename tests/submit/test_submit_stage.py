"""The submit stage: an exported scene planned into shards, published in one commit, with the
plan in the ledger; nothing waits on collection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from bp_common.contracts import decode
from bp_common.contracts.envelope import encode
from bp_common.contracts.events import CollectionShard, ExportSummary, SceneExported
from bp_common.ledger import StageState
from bp_common.runtime.delivery import Outcome

from tests.submit.conftest import KITCHEN, deliver_next, exported_task_config, pipeline, tiny


def test_an_exported_scene_is_planned_into_shards_covering_every_episode_once(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path, tiny(episodes_per_task=3, episodes_per_shard=2), robots=None)
    run = p.drop_scene(KITCHEN)
    assert deliver_next(p, "export").outcome is Outcome.ACK
    assert deliver_next(p, "submit").outcome is Outcome.ACK
    shards = [
        decode("collection-shards", e.data, e.attributes)
        for e in p.bus.published("collection-shards")
    ]
    assert all(isinstance(s, CollectionShard) for s in shards)
    tasks = exported_task_config(p, "kitchen_table", run.run_id)
    planned = {(r["robot"], t) for r in tasks["robots"] if r["base_pose"] for t in r["tasks"]}
    covered = [
        (s.robot, s.task_id, s.first_episode + k)
        for s in shards
        if isinstance(s, CollectionShard)
        for k in range(s.episodes)
    ]
    assert len(covered) == len(set(covered)) == 3 * len(planned)
    assert {(robot, task) for robot, task, _ in covered} == planned
    assert max(s.episodes for s in shards if isinstance(s, CollectionShard)) == 2
    plan = p.ports.ledger.shards.get(run.run_id)
    assert plan is not None and len(plan.planned) == len(shards) and plan.done == {}
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    submit = record.stages["submit"]
    assert submit.state is StageState.SUCCEEDED and submit.published_at is not None
    assert submit.counts["episodes"] == 3 * len(planned)
    assert submit.counts["shards"] == len(shards)

    # A redelivered plan is a duplicate of the committed stage: no shard is published again.
    p.bus.publish(p.bus.published("scenes-exported")[0])
    again = deliver_next(p, "submit")
    assert again.outcome is Outcome.ACK and again.duplicate
    assert len(p.bus.published("collection-shards")) == len(shards)


def _exported_event(p: object, root: Path, config: dict[str, object]) -> SceneExported:
    """An export with the given task config, committed into the bucket as export writes it."""
    from bp_ops.embedded import EmbeddedPipeline

    assert isinstance(p, EmbeddedPipeline)
    prefix = "runs/kitchen_table/run-00000000000000000001/export/"
    graph = (KITCHEN.parent / "scene.usda").read_bytes()  # any bytes: the stage skips first
    files = {"scene_graph.json": graph, "task_config.json": json.dumps(config).encode()}
    for name, data in files.items():
        p.ports.blobs.write_bytes(prefix + name, data)
    manifest = json.dumps({"files": {n: {"sha256": hashlib.sha256(d).hexdigest(),
                                         "size": len(d)} for n, d in files.items()}}).encode()
    p.ports.blobs.write_bytes(prefix + "export_manifest.json", manifest)
    return SceneExported(
        scene_id="kitchen_table",
        run_id="run-00000000000000000001",
        bucket="local",
        source_object="scenes/kitchen_table/scene.usda",
        source_generation=1,
        export_prefix=prefix,
        manifest=prefix + "export_manifest.json",
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        summary=ExportSummary(objects=3, tasks=1 if config["tasks"] else 0, robots=[]),
    )


@pytest.mark.parametrize(
    "config",
    [
        {"schema_version": 1, "scene_id": "kitchen_table", "robots": [], "tasks": []},
        {"schema_version": 1, "scene_id": "kitchen_table", "tasks": [{"task_id": "t"}],
         "robots": [{"robot": "ur5e", "base_pose": None, "tasks": ["t"]},
                    {"robot": "franka_panda", "base_pose": {"position": [0, 0, 0]},
                     "tasks": []}]},
    ],
    ids=["no task kept", "no robot with a task"],
)
def test_a_scene_with_nothing_to_collect_is_skipped(
    tmp_path: Path, config: dict[str, object]
) -> None:
    p = pipeline(tmp_path, tiny())
    event = _exported_event(p, tmp_path, config)
    p.bus.publish(encode(event, {}))
    verdict = deliver_next(p, "submit")
    assert verdict.outcome is Outcome.ACK and verdict.emitted is None
    record = p.ports.ledger.get(event.run_id)
    assert record is not None and record.stages["submit"].state is StageState.SKIPPED
    assert "nothing to collect" in (record.stages["submit"].note or "")
    assert p.bus.published("collection-shards") == []
    assert p.ports.ledger.shards.get(event.run_id) is None


