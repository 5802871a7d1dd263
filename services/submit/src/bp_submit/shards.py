"""A run cut into shards: each robot's kept tasks, each task's episodes in runs of a few.

A shard is the unit a collector worker takes: some consecutive episodes of one robot and one
task. Its id names them (`{robot}.{task number}-{task slug}.{first:05d}`, tasks numbered in
sorted order), so planning the same run again gives the same shards, and a redelivered plan
republishes nothing new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ShardPlan:
    shard_id: str
    robot: str
    task_id: str
    first_episode: int
    episodes: int


def plan_shards(
    robots: dict[str, list[str]], episodes_per_task: int, episodes_per_shard: int
) -> list[ShardPlan]:
    """Every robot's tasks, each task's episodes cut into shards of at most
    `episodes_per_shard`; robots and tasks in a stable order."""
    if episodes_per_task < 1 or episodes_per_shard < 1:
        raise ValueError("episodes per task and per shard are at least 1")
    shards: list[ShardPlan] = []
    for robot in sorted(robots):
        for number, task in enumerate(sorted(set(robots[robot]))):
            slug = re.sub(r"[^a-z0-9_-]", "_", task.lower())[:48]
            for first in range(0, episodes_per_task, episodes_per_shard):
                count = min(episodes_per_shard, episodes_per_task - first)
                shard_id = f"{robot}.{number:03d}-{slug}.{first:05d}"
                shards.append(ShardPlan(shard_id, robot, task, first, count))
    return shards
