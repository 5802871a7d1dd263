"""A run's shards gathered into what import reads: each robot's manifest, then the collection's.

Both are create-only and computed only from the committed shard manifests, so a repeated fan-in
(a redelivery, the reconciler) writes the same bytes or finds them written.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from typing import Any

from bp_common.blobstore import BlobStore
from bp_common.contracts.events import CollectionShard, EpisodesCollected, RobotEpisodes
from bp_common.errors import AlreadyExists
from bp_common.ledger.shards import Collection

ROBOT_MANIFEST = "manifest.json"
COLLECTION_MANIFEST = "collection_manifest.json"


def counts(episodes: list[dict[str, Any]]) -> dict[str, float]:
    n = len(episodes)
    ok = sum(1 for e in episodes if e["success"])
    clean = sum(1 for e in episodes if e["collision_free"])
    return {
        "episodes": n,
        "succeeded": ok,
        "collision_free": clean,
        "success_rate": round(ok / n, 4) if n else 0.0,
        "collision_free_rate": round(clean / n, 4) if n else 0.0,
    }


def fan_in(
    blobs: BlobStore, shard: CollectionShard, collection: Collection
) -> tuple[EpisodesCollected, dict[str, float]]:
    """Write the robots' manifests and the collection's; the event and the run's counts."""
    prefix = f"runs/{shard.scene_id}/{shard.run_id}/episodes/"
    by_robot: dict[str, list[dict[str, Any]]] = defaultdict(list)
    shards_of: dict[str, list[str]] = defaultdict(list)
    for shard_id in sorted(collection.done):
        document = json.loads(blobs.read_bytes(collection.done[shard_id].manifest))
        by_robot[document["robot"]].extend(document["episodes"])
        shards_of[document["robot"]].append(shard_id)
    robots: list[RobotEpisodes] = []
    run_counts: dict[str, float] = {}
    for robot in sorted(by_robot):
        episodes = sorted(by_robot[robot], key=lambda e: str(e["episode_id"]))
        robot_counts = counts(episodes)
        manifest = {
            "format": "bp-robot-episodes",
            "format_version": 1,
            "scene_id": shard.scene_id,
            "robot": robot,
            "labels": {"scene_id": shard.scene_id, "run_id": shard.run_id, "stage": "collect"},
            "collector": {"backend": shard.backend},
            "shards": shards_of[robot],
            "episodes": episodes,
            "counts": robot_counts,
        }
        key = f"{prefix}{robot}/{ROBOT_MANIFEST}"
        _create(blobs, key, manifest)
        robots.append(
            RobotEpisodes(
                robot=robot,
                prefix=f"{prefix}{robot}/",
                manifest=key,
                episodes=int(robot_counts["episodes"]),
                succeeded=int(robot_counts["succeeded"]),
                collision_free=int(robot_counts["collision_free"]),
            )
        )
        run_counts.update({f"{robot}.{k}": v for k, v in robot_counts.items()})
    everything = [e for robot in sorted(by_robot) for e in by_robot[robot]]
    run_counts.update(counts(everything), shards=len(collection.done))
    document = {
        "format": "bp-episodes-collected",
        "format_version": 1,
        "scene_id": shard.scene_id,
        "robots": [{**r.model_dump(), **counts(by_robot[r.robot])} for r in robots],
    }
    _create(blobs, prefix + COLLECTION_MANIFEST, document)
    event = EpisodesCollected(
        scene_id=shard.scene_id,
        run_id=shard.run_id,
        bucket=shard.bucket,
        episodes_prefix=prefix,
        robots=robots,
    )
    return event, run_counts


def _create(blobs: BlobStore, key: str, document: dict[str, Any]) -> None:
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    with contextlib.suppress(AlreadyExists):  # an earlier fan-in wrote the same document
        blobs.create_only(key, data, content_type="application/json")
