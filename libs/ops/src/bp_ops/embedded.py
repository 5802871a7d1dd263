"""The embedded default: every installed stage in one process on a folder, SQLite, a local bus."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bp_common import wiring
from bp_common.bus import Message
from bp_common.bus.local import LocalBus
from bp_common.config import Settings
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import SceneUpload
from bp_common.ids import run_id_for
from bp_common.runtime.delivery import Outcome, Verdict
from bp_common.runtime.stage import Ports, Stage
from bp_common.runtime.uploads import claimed_run, drop_stamp
from opentelemetry.metrics import Meter

from bp_ops.scene_drop import SceneFile, plan_drop

log = logging.getLogger("bp.embedded")
# The bucket name the embedded default's events carry (run ids derive from it).
LOCAL_BUCKET = "local"
Progress = Callable[[str, Verdict, float], None]
# How often messages still being worked have their lease on the local bus renewed.
LEASE_RENEWAL_S = 1.0


@dataclass
class EmbeddedRun:
    scene_id: str
    run_id: str
    deliveries: list[tuple[str, Verdict]] = field(default_factory=list)


class EmbeddedPipeline:
    """`meter`, when given, takes the stages' metrics instead of the process's meter provider."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        stages: dict[str, Stage[Any, Any]],
        *,
        meter: Meter | None = None,
    ) -> None:
        self.root = Path(root)
        self.settings = settings
        self.stages = stages
        adapters = wiring.embedded(self.root, settings)
        self.ports: Ports = adapters.ports
        self.bus: LocalBus = adapters.bus
        self.deliverers = {
            name: wiring.deliverer(stage, self.ports, settings, meter=meter)
            for name, stage in stages.items()
        }

    def _put(
        self, item: SceneFile, *, force: bool = False, stamp: dict[str, str] | None = None
    ) -> int | None:
        """Copy a file into the bucket unless identical content (and stamp) is there (then
        None: it keeps its generation); returns the new generation."""
        info = self.ports.blobs.stat(item.key)
        metadata = {"sha256": item.sha256, **(stamp or {})}
        if not force and info is not None and metadata.items() <= info.metadata.items():
            return None
        with (
            item.path.open("rb") as reader,
            self.ports.blobs.open_write(item.key, metadata=metadata) as writer,
        ):
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                writer.write(chunk)
        stat = self.ports.blobs.stat(item.key)
        assert stat is not None
        return stat.generation

    def close(self) -> None:
        """Release what the stages' adapters hold (the collect stage's simulation processes)."""
        for deliverer in self.deliverers.values():
            deliverer.close()

    def drop_scene(self, scene_path: Path, scene_id: str | None = None) -> EmbeddedRun:
        """Put the scene into the local bucket and announce it as Cloud Storage would.

        Identical content maps to the run it already has (bp_common.runtime.uploads), which
        is then not announced again.
        """
        drop = plan_drop(scene_path, scene_id)
        changed = [c for c in drop.companions if self._put(c) is not None]
        # The scene file goes last, and again when only what it refers to changed: its new
        # generation announces the new content, stamped with it (decision 0076).
        self._put(
            drop.scene, force=bool(changed), stamp=drop_stamp(self.ports.blobs, drop.scene_id)
        )
        scene = self.ports.blobs.stat(drop.scene.key)
        assert scene is not None
        generation = scene.generation
        run_id = claimed_run(
            self.ports.ledger, self.ports.blobs, drop.scene_id, scene
        ) or run_id_for(LOCAL_BUCKET, drop.scene.key, generation)
        if self.ports.ledger.get(run_id) is None:
            self.bus.publish(self._notification(drop.scene.key, generation))
        return EmbeddedRun(scene_id=drop.scene_id, run_id=run_id)

    def _notification(self, key: str, generation: int) -> Envelope:
        info = self.ports.blobs.stat(key)
        assert info is not None
        now = datetime.now(UTC).isoformat()
        resource = {
            "kind": "storage#object",
            "name": key,
            "bucket": LOCAL_BUCKET,
            "generation": str(generation),
            "size": str(info.size),
            "timeCreated": now,
        }
        attributes = {
            "eventType": "OBJECT_FINALIZE",
            "payloadFormat": "JSON_API_V1",
            "bucketId": LOCAL_BUCKET,
            "objectId": key,
            "objectGeneration": str(generation),
            "eventTime": now,
        }
        return Envelope(SceneUpload.TOPIC, json.dumps(resource).encode(), attributes)

    def drain(
        self, run: EmbeddedRun, progress: Progress | None = None, idle_timeout_s: float = 0.0
    ) -> EmbeddedRun:
        """Deliver until no message of an installed stage waits (retries wait out their backoff).

        Each stage works on as many messages at once as its deliverer has work slots (a run's
        shards on every core); outcomes are settled, and reported, one at a time.
        """
        names = list(self.stages)
        self.bus.reclaim()
        slots = {name: self.deliverers[name].limits.work_slots for name in names}
        working: dict[Future[Verdict], tuple[str, Message, float]] = {}
        with ThreadPoolExecutor(sum(slots.values()), thread_name_prefix="bp-embedded") as pool:
            while True:
                busy = Counter(stage for stage, _, _ in working.values())
                free = [name for name in names if busy[name] < slots[name]]
                message = self.bus.receive(free) if free else None
                if message is not None:
                    stage = message.id.rsplit(".", 1)[-1]
                    work = pool.submit(self.deliverers[stage].deliver, message)
                    working[work] = (stage, message, time.monotonic())
                    continue
                if working:
                    done, _ = wait(working, timeout=LEASE_RENEWAL_S, return_when=FIRST_COMPLETED)
                    for work, (_, message, _) in working.items():
                        if work not in done:
                            self.bus.extend(message, LEASE_RENEWAL_S * 4)
                    for work in done:
                        stage, message, started = working.pop(work)
                        self._settle(run, stage, message, work.result(), started, progress)
                    continue
                due = self.bus.next_due(names)
                if due is None:
                    return run
                time.sleep(min(due, 5.0))

    def _settle(
        self,
        run: EmbeddedRun,
        stage: str,
        message: Message,
        verdict: Verdict,
        started: float,
        progress: Progress | None,
    ) -> None:
        if verdict.outcome is Outcome.ACK:
            self.bus.ack(message)
        elif verdict.outcome is Outcome.DEAD_LETTER and verdict.error is not None:
            self.bus.dead_letter(message, verdict.error)
        elif verdict.outcome is Outcome.DEFER:
            self.bus.defer(message)
        else:
            self.bus.nack(message)
        run.deliveries.append((stage, verdict))
        if progress:
            progress(stage, verdict, time.monotonic() - started)
