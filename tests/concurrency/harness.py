"""What the concurrency tests and `benchmarks/concurrency.py` drive and check on the emulators.

- a tiny scene (a table and a cube: one object to move, one robot, one task, one episode);
- drops of many scenes at once through the storage emulator;
- every message on a consumed topic published twice more (`Duplicator`), and the originals
  recorded per topic and run;
- every committed object hashed (generation and the server's md5) when its manifest appears,
  and again at the end (`CommitWatch`);
- the runs polled while in flight, through the status page's JSON API (`RunPoller`): a run must
  never read `succeeded` before its dataset's manifest is in the datasets bucket;
- the lease log: no unit of a run ever had two holders at once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bp_common.contracts.events import TOPICS
from bp_common.ids import run_id_for
from bp_common.ledger import RunLedger
from bp_common.ledger.leases import overlaps, tenures
from google.cloud import pubsub_v1, storage

ROBOT = "franka_panda"
# One robot, one episode of a short pick-and-place at a small image size.
TINY_ENV = {
    "BP_ROBOTS": ROBOT,
    "BP_EPISODES_PER_TASK": "1",
    "BP_EPISODE_WIDTH": "64",
    "BP_EPISODE_HEIGHT": "64",
    "BP_EPISODE_FPS": "10",
    "MUJOCO_GL": "egl",
}
COPY_ATTRIBUTE = "test_copy"
DEFERRALS_ATTRIBUTE = "bp_deferrals"
CONSUMED = ("scene-uploads", "scenes-exported", "episodes-collected", "datasets-ready")


def write_tiny_scene(folder: Path) -> Path:
    """A table with a 5 cm cube on it, Z up, in metres: the export plans one pick-and-place."""
    from tests.export.usd_scene_builder import PlannedObject, ScenePlan, Shape, tabletop_plan

    table = tabletop_plan().objects[0]
    cube = PlannedObject(
        "obj_cube",
        (0.0, 0.15, 0.75),
        [Shape("Block", "box", (0.0, 0.0, 0.025), (0.05, 0.05, 0.05))],
        rigid=True,
        mass=0.1,
        label="cube",
        friction=0.7,
    )
    folder.mkdir(parents=True, exist_ok=True)
    return ScenePlan(objects=[table, cube]).write(folder / "scene.usda")


def drop_scenes(
    client: storage.Client, bucket: str, scene_file: Path, scene_ids: Iterable[str]
) -> dict[str, str]:
    """Upload the scene file as every scene id at once; returns each scene's run id."""
    data = scene_file.read_bytes()

    def drop(scene_id: str) -> tuple[str, str]:
        blob = client.bucket(bucket).blob(f"scenes/{scene_id}/scene.usda")
        blob.upload_from_string(data, content_type="text/plain")
        return scene_id, run_id_for(bucket, blob.name, blob.generation)

    ids = list(scene_ids)
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        return dict(pool.map(drop, ids))


@dataclass
class Published:
    """The original messages seen on each topic, by run (copies and hand-backs left out)."""

    by_topic: dict[str, Counter[str]] = field(default_factory=dict)
    copies: int = 0
    deferred: int = 0
    deferred_on: Counter[str] = field(default_factory=Counter)
    message_ids: set[str] = field(default_factory=set)
    """Every message seen once: the emulator may deliver one again."""

    def count(self, topic: str, run_id: str) -> int:
        return self.by_topic.get(topic, Counter())[run_id]


class Duplicator:
    """A subscription of its own on every topic: records what is published, and publishes each
    original message on a consumed topic `copies` times more (as redelivering Pub/Sub may)."""

    def __init__(self, project: str, copies: int = 2) -> None:
        self.project = project
        self.copies = copies
        self.seen = Published()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.publisher = pubsub_v1.PublisherClient()
        self._lock = threading.Lock()
        self._futures: list[Any] = []
        self._subscriptions: list[str] = []

    def __enter__(self) -> Duplicator:
        for topic in TOPICS:
            name = self.subscriber.subscription_path(
                self.project, f"test-dup-{topic}-{uuid.uuid4().hex[:8]}"
            )
            self.subscriber.create_subscription(
                request={
                    "name": name,
                    "topic": self.publisher.topic_path(self.project, topic),
                    "ack_deadline_seconds": 60,
                }
            )
            self._subscriptions.append(name)
            self._futures.append(
                self.subscriber.subscribe(name, lambda m, topic=topic: self._seen(topic, m))
            )
        return self

    def _seen(self, topic: str, message: Any) -> None:
        attributes = dict(message.attributes)
        with self._lock:
            again = message.message_id in self.seen.message_ids
            self.seen.message_ids.add(message.message_id)
        if again:  # a redelivery to this watcher: counted and copied the first time
            message.ack()
            return
        with self._lock:
            if DEFERRALS_ATTRIBUTE in attributes:
                self.seen.deferred += 1
                self.seen.deferred_on[topic] += 1
            elif COPY_ATTRIBUTE in attributes:
                self.seen.copies += 1
            else:
                run = attributes.get("run_id") or run_id_for(
                    attributes.get("bucketId", ""),
                    attributes.get("objectId", ""),
                    attributes.get("objectGeneration", "0"),
                )
                self.seen.by_topic.setdefault(topic, Counter())[run] += 1
        if topic in CONSUMED and not {COPY_ATTRIBUTE, DEFERRALS_ATTRIBUTE} & set(attributes):
            path = self.publisher.topic_path(self.project, topic)
            for copy in range(1, self.copies + 1):
                self.publisher.publish(
                    path, message.data, **{**attributes, COPY_ATTRIBUTE: str(copy)}
                ).result(30)
        message.ack()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for future in self._futures:
            future.cancel()
        for name in self._subscriptions:
            self.subscriber.delete_subscription(request={"subscription": name})


@dataclass(frozen=True)
class Fingerprint:
    generation: int
    md5: str | None


class Periodic:
    """Calls `tick` every `period_s` on a thread of its own for as long as the `with` lasts."""

    period_s = 0.5

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError


class CommitWatch(Periodic):
    """Hashes every object a committed manifest names when the manifest appears, to compare at
    the end: nothing committed may change."""

    # The commits of the pipeline bucket's runs, and of the datasets bucket's publications (a
    # published dataset carries its import manifest as a file: not a commit there).
    PIPELINE_MANIFESTS = (
        "export_manifest.json",
        "import_manifest.json",
        "collection_manifest.json",
    )
    DATASET_MANIFESTS = ("dataset_manifest.json",)

    def __init__(self, client: storage.Client, bucket: str, datasets_bucket: str) -> None:
        self.client = client
        self.buckets = (bucket, datasets_bucket)
        self.committed: dict[tuple[str, str], Fingerprint] = {}
        self.manifests: set[tuple[str, str]] = set()
        super().__init__()

    def tick(self) -> None:
        self.scan()

    def scan(self) -> None:
        for bucket, prefix, manifests in (
            (self.buckets[0], "runs/", self.PIPELINE_MANIFESTS),
            (self.buckets[1], "datasets/", self.DATASET_MANIFESTS),
        ):
            listing = {b.name: b for b in self.client.list_blobs(bucket, prefix=prefix)}
            for name in sorted(listing):
                fresh = (bucket, name) not in self.manifests
                if fresh and name.rsplit("/", 1)[-1] in manifests:
                    self._record(bucket, name, listing)

    def _record(self, bucket: str, manifest: str, listing: dict[str, Any]) -> None:
        document = json.loads(listing[manifest].download_as_bytes())
        folder = manifest.rsplit("/", 1)[0] + "/"
        keys = [manifest]
        if "attempt" in document:  # export and import: files under the committed attempt
            root = folder + document["attempt"]["path"]
            keys += [root + name for name in document["files"]]
        elif manifest.endswith("dataset_manifest.json"):
            keys += [folder + name for name in document["files"]]
        elif manifest.endswith("collection_manifest.json"):
            for robot in document["robots"]:
                keys.append(robot["manifest"])
                robot_manifest = json.loads(listing[robot["manifest"]].download_as_bytes())
                for episode in robot_manifest["episodes"]:
                    start = robot["prefix"] + episode["prefix"]
                    keys += [k for k in listing if k.startswith(start)]
        for key in keys:
            blob = listing.get(key) or self.client.bucket(bucket).get_blob(key)
            assert blob is not None, f"{manifest} names {key}, which is not there"
            self.committed[(bucket, key)] = Fingerprint(int(blob.generation), blob.md5_hash)
        self.manifests.add((bucket, manifest))

    def changed(self) -> list[str]:
        """Committed objects that are gone or differ from when their manifest appeared."""
        changed = []
        for (bucket, key), before in sorted(self.committed.items()):
            blob = self.client.bucket(bucket).get_blob(key)
            now = None if blob is None else Fingerprint(int(blob.generation), blob.md5_hash)
            if now != before:
                changed.append(f"gs://{bucket}/{key}: {before} -> {now}")
        return changed


class RunPoller(Periodic):
    """Reads the runs from the status page's JSON API while they are in flight, and notes any
    run that reads `succeeded` while its dataset is not yet published."""

    def __init__(
        self, status_url: str, token: str, client: storage.Client, datasets_bucket: str
    ) -> None:
        self.request = urllib.request.Request(
            status_url.rstrip("/") + "/api/runs?limit=500",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.client = client
        self.datasets = datasets_bucket
        self.polls = 0
        self.states: dict[str, set[str]] = {}
        self.early: list[str] = []
        self.period_s = 0.3
        super().__init__()

    def tick(self) -> None:
        try:
            with urllib.request.urlopen(self.request, timeout=10) as response:
                runs = json.loads(response.read())
        except OSError:
            return  # the status page may be restarting
        self.polls += 1
        for run in runs:
            self.states.setdefault(run["run_id"], set()).add(run["state"])
            if run["state"] == "succeeded" and not self._published(run):
                self.early.append(f"{run['run_id']} read succeeded before its publication")

    def _published(self, run: dict[str, Any]) -> bool:
        key = f"datasets/{run['scene_id']}/{ROBOT}/{run['run_id']}/dataset_manifest.json"
        return self.client.bucket(self.datasets).get_blob(key) is not None


def wait_for_runs(ledger: RunLedger, run_ids: Iterable[str], timeout_s: float) -> dict[str, str]:
    """Each run's state once every one has ended (or the timeout passed)."""
    wanted = set(run_ids)
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {}
        for run_id in wanted:
            record = ledger.get(run_id)
            states[run_id] = record.state if record else "pending"
        if all(state not in ("pending", "running") for state in states.values()):
            break
        time.sleep(2)
    return states


def wait_for_releases(ledger: RunLedger, run_ids: Iterable[str], timeout_s: float) -> None:
    """Wait until no unit of these runs is held: a stage's holder still publishes and releases
    after its event is out, so the run can end just before its last holders let go."""
    wanted = set(run_ids)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(r.holder for r in ledger.leases.all() if r.run_id in wanted):
            return
        time.sleep(1)


@dataclass(frozen=True)
class LeaseReport:
    units: int
    tenures: int
    overlapping: list[str]
    """Units whose log shows two holders at once (there must be none)."""
    succeeded: Counter[tuple[str, str]]
    """(run, unit) -> how many tenures ended `succeeded`: the work ran to its end that often."""
    logs: dict[tuple[str, str], list[str]]
    """(run, unit) -> its tenures, `holder#token end outcome`, for the failure messages."""

    def unfinished(self) -> dict[tuple[str, str], list[str]]:
        """The logs of units that no tenure saw to success."""
        return {unit: log for unit, log in self.logs.items() if unit not in self.succeeded}


def lease_report(ledger: RunLedger, run_ids: Iterable[str]) -> LeaseReport:
    wanted = set(run_ids)
    now = datetime.now(UTC)
    records = [r for r in ledger.leases.all() if r.run_id in wanted]
    overlapping = [
        f"{r.run_id}/{r.unit}: {a.holder} and {b.holder}"
        for r in records
        for a, b in overlaps(r, now)
    ]
    succeeded: Counter[tuple[str, str]] = Counter()
    for record in records:
        for tenure in record.log:
            if tenure.outcome == "succeeded":
                succeeded[(record.run_id, record.unit)] += 1
    return LeaseReport(
        units=len(records),
        tenures=sum(len(r.log) for r in records),
        overlapping=overlapping,
        succeeded=succeeded,
        logs={
            (r.run_id, r.unit): [
                f"{t.holder}#{t.token} {t.end} {t.outcome}" for t in tenures(r, now)
            ]
            for r in records
        },
    )
