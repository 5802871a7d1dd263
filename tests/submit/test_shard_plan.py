"""A run cut into shards: every planned episode in exactly one shard, the same cut every time."""

from __future__ import annotations

import pytest
from bp_common.contracts.events import CollectionShard
from bp_submit.shards import plan_shards


def test_every_episode_is_in_exactly_one_shard_of_at_most_the_shard_size() -> None:
    robots = {"ur5e": ["place_bottle", "pick_cube"], "franka_panda": ["pick_cube"]}
    shards = plan_shards(robots, episodes_per_task=12, episodes_per_shard=5)
    assert [s.shard_id for s in shards] == [
        "franka_panda.000-pick_cube.00000",
        "franka_panda.000-pick_cube.00005",
        "franka_panda.000-pick_cube.00010",
        "ur5e.000-pick_cube.00000",
        "ur5e.000-pick_cube.00005",
        "ur5e.000-pick_cube.00010",
        "ur5e.001-place_bottle.00000",
        "ur5e.001-place_bottle.00005",
        "ur5e.001-place_bottle.00010",
    ]
    covered = [
        (s.robot, s.task_id, s.first_episode + k) for s in shards for k in range(s.episodes)
    ]
    assert len(covered) == len(set(covered)) == 3 * 12
    assert max(s.episodes for s in shards) == 5 and shards[2].episodes == 2
    assert plan_shards(dict(reversed(robots.items())), 12, 5) == shards  # a stable cut


def test_a_shard_id_is_a_valid_contract_id() -> None:
    [shard] = plan_shards({"ur10": ["Open Drawer/2"]}, 1, 5)
    assert shard.shard_id == "ur10.000-open_drawer_2.00000"
    CollectionShard.model_validate(
        {
            "scene_id": "kitchen",
            "run_id": "run-" + "0" * 20,
            "bucket": "b",
            "shard_id": shard.shard_id,
            "export_manifest": "runs/kitchen/run/export/export_manifest.json",
            "export_manifest_sha256": "0" * 64,
            "robot": "ur10",
            "task_id": "Open Drawer/2",
            "first_episode": 0,
            "episodes": 1,
            "run_seed": 7,
            "backend": "mujoco",
            "camera": {},
            "max_episode_seconds": 10,
        }
    )


def test_sizes_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_shards({"ur5e": ["t"]}, 10, 0)
