"""What the status page shows, read from the run ledger, the dead-letter queues and the bucket."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bp_common.blobstore.base import BlobStore
from bp_common.bus.base import ATTR_ERROR_TYPE, ATTR_PUBSUB_DL_COUNT, DeadLetter, DeadLetterQueue
from bp_common.errors import InvalidName
from bp_common.ids import SCENE_FILE_NAMES, run_id_for
from bp_common.ledger import RunRecord
from bp_common.ledger.run_state import run_state
from bp_common.ledger.shards import Collection
from bp_common.runtime.attempts import ATTEMPTS_DIR, read_committed
from bp_common.topology import ROUTE_BY_STAGE

_ROBOT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# What the import stage writes per robot (bp_import): its commit, and its report in the dataset.
IMPORT_MANIFEST = "import_manifest.json"
HELD_BACK_MANIFEST = "held_back.json"
QUALITY_REPORT = "quality/quality_report.html"
# Checking a few objects per run is cheap on a folder and a round trip each on Cloud Storage.
_REPORT_LOOKUP_WORKERS = 8


def validate_robot(robot: str) -> str:
    """A robot name as the events carry it; anything else never names a report."""
    if not _ROBOT.fullmatch(robot):
        raise InvalidName("robot must be a lowercase slug", robot=repr(robot))
    return robot


def quality_report_key(blobs: BlobStore, run: RunRecord, robot: str) -> str | None:
    """Where a robot's quality report of one run lies, if it has one: in the attempt its import
    manifest commits, or the one its held-back manifest commits (its gates failed), or, from an
    import that committed neither, in the latest attempt that wrote a report."""
    unit = f"runs/{run.scene_id}/{run.run_id}/lerobot/{validate_robot(robot)}/"
    for manifest in (IMPORT_MANIFEST, HELD_BACK_MANIFEST):
        committed = read_committed(blobs, unit + manifest)
        if committed is not None:
            return committed.root + QUALITY_REPORT if QUALITY_REPORT in committed.files else None
    reports = [
        info
        for info in blobs.list(unit + ATTEMPTS_DIR + "/")
        if info.key.endswith("/" + QUALITY_REPORT)
    ]
    return max(reports, key=lambda info: info.generation).key if reports else None


def robots_of(run: RunRecord) -> list[str]:
    """Robots the run's emitted events name (export's plan, submit's episodes, import's datasets).

    Reading them from the ledger costs one existence check per robot instead of listing a
    dataset prefix that holds every episode file.
    """
    found: set[str] = set()
    for record in run.stages.values():
        if record.emitted is None:
            continue
        try:
            event = json.loads(record.emitted.data)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        summary = event.get("summary")
        if isinstance(summary, dict):
            found.update(r for r in summary.get("robots", []) if isinstance(r, str))
        for key in ("robots", "datasets", "published", "held_back"):
            items = event.get(key, [])
            if isinstance(items, list):
                found.update(
                    item["robot"]
                    for item in items
                    if isinstance(item, dict) and isinstance(item.get("robot"), str)
                )
    return sorted(r for r in found if _ROBOT.fullmatch(r))


def quality_reports(blobs: BlobStore, run: RunRecord) -> list[str]:
    """Robots of the run whose quality report exists in the bucket."""
    return [robot for robot in robots_of(run) if quality_report_key(blobs, run, robot)]


def quality_reports_of(blobs: BlobStore, runs: Iterable[RunRecord]) -> dict[str, list[str]]:
    """Run id -> robots with a report, looked up concurrently."""
    runs = list(runs)
    with ThreadPoolExecutor(max_workers=_REPORT_LOOKUP_WORKERS) as pool:
        found = pool.map(lambda run: quality_reports(blobs, run), runs)
        return {run.run_id: robots for run, robots in zip(runs, found, strict=True)}


def letter_run_id(letter: DeadLetter) -> str | None:
    """The run a dead letter belongs to: events carry it, a scene upload derives it."""
    if letter.attributes.get("run_id"):
        return letter.attributes["run_id"]
    attrs = letter.attributes
    name = attrs.get("objectId", "")
    is_scene = name.startswith("scenes/") and name.rsplit("/", 1)[-1] in SCENE_FILE_NAMES
    if is_scene and attrs.get("bucketId") and attrs.get("objectGeneration"):
        return run_id_for(attrs["bucketId"], name, attrs["objectGeneration"])
    return None


def letter_reason(letter: DeadLetter) -> str:
    """Why it was dead-lettered: the stage's error, or Pub/Sub giving up after N attempts."""
    if letter.error:
        return letter.error
    count = letter.attributes.get(ATTR_PUBSUB_DL_COUNT)
    return f"gave up after {count} delivery attempts" if count else ""


@dataclass(frozen=True)
class DeadLetterDepth:
    """One stage's dead-letter subscription: how many wait (up to the limit) and which."""

    stage: str
    subscription: str
    source_topic: str
    letters: list[DeadLetter] = field(default_factory=list)
    limit: int = 0

    @property
    def waiting(self) -> int:
        return len(self.letters)

    @property
    def capped(self) -> bool:
        """True when the queue may hold more than was counted."""
        return self.limit > 0 and len(self.letters) >= self.limit


def dead_letter_depths(queue: DeadLetterQueue, limit: int) -> list[DeadLetterDepth]:
    """Every stage's dead letters, peeked (leased and released) up to `limit` per stage."""
    depths = []
    for stage in queue.stages():
        route = ROUTE_BY_STAGE[stage]
        depths.append(
            DeadLetterDepth(
                stage=stage,
                subscription=route.dead_letter_subscription,
                source_topic=route.consumes,
                letters=queue.peek(stage, limit),
                limit=limit,
            )
        )
    return depths


def run_document(run: RunRecord, reports: list[str]) -> dict[str, Any]:
    """A run as the JSON API returns it: the ledger document, its state (the one derivation
    `bp runs` uses, with the deciding stage, the reason, and every pipeline stage's state) and
    its reports."""
    return {
        **run.to_document(),
        **run_state(run).to_document(),
        "quality_reports": [
            {"robot": robot, "url": f"/runs/{run.run_id}/reports/{robot}"} for robot in reports
        ],
    }


def shards_document(collection: Collection, now: datetime) -> dict[str, Any]:
    """A run's collection progress by shard, as `bp runs show --json` and the status API give
    it: done and total shards and episodes, the rate, the ETA, and why each failed shard did."""
    failed = {s: f"{f.type}: {f.message}" for s, f in sorted(collection.failed.items())}
    return {**collection.progress(now).__dict__, "failed": failed}


def letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "stage": letter.stage,
        "scene_id": letter.scene_id,
        "run_id": letter_run_id(letter),
        "source_topic": letter.source_topic,
        "replay_count": letter.replay_count,
        "reason": letter_reason(letter),
        "error_type": letter.attributes.get(ATTR_ERROR_TYPE),
        "publish_time": letter.publish_time.isoformat() if letter.publish_time else None,
    }


def depth_document(depth: DeadLetterDepth) -> dict[str, Any]:
    return {
        "stage": depth.stage,
        "subscription": depth.subscription,
        "source_topic": depth.source_topic,
        "waiting": depth.waiting,
        "capped": depth.capped,
        "letters": [letter_document(letter) for letter in depth.letters],
    }
