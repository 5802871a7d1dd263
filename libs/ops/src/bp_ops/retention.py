"""Retention on the embedded folder (`bp gc`): what is past it, and removing it.

The rules (decision 0077), read from the run ledger and the bucket at `now`:

- **a run past retention** (ended, last updated before `runs_before`) goes whole: every object
  under `runs/{scene}/{run}/`, its ledger entry and the content claims it holds;
- **raw episodes** of an ended run whose import committed (`succeeded`, or `quality_failed`
  with its verdicts committed) before `episodes_before` go: `runs/{scene}/{run}/episodes/`;
- **uncommitted attempts** of an ended run go: under a unit's `attempts/`, every attempt that
  no manifest beside them commits (a losing or crashed delivery's leftovers).

Never removed: anything of a live run (so nothing a live run's committed manifest names), and
the published datasets, which live outside the bucket (the publication folder, or Firebase
Storage) and which no rule reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from bp_common.blobstore import BlobInfo, BlobStore
from bp_common.errors import PipelineError
from bp_common.ledger import RunLedger, RunRecord, StageState
from bp_common.ledger.run_state import run_state
from bp_common.runtime.attempts import ATTEMPT_PATH, ATTEMPTS_DIR

RUN_PAST_RETENTION = "run past retention"
RAW_EPISODES = "raw episodes"
UNCOMMITTED_ATTEMPT = "uncommitted attempt"
# The import's outcomes that committed every robot's verdict: its raw episodes are read no more.
_IMPORT_COMMITTED = (StageState.SUCCEEDED, StageState.QUALITY_FAILED)


@dataclass(frozen=True)
class Removal:
    """One prefix to remove, why, and what it holds."""

    reason: str
    scene_id: str
    run_id: str
    prefix: str
    keys: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class RetentionPlan:
    removals: list[Removal] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    """Runs past retention: their ledger entries and content claims go too."""

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    @property
    def objects(self) -> int:
        return sum(len(r.keys) for r in self.removals)


def _removal(reason: str, run: RunRecord, prefix: str, infos: Iterable[BlobInfo]) -> Removal:
    found = list(infos)
    return Removal(
        reason,
        run.scene_id,
        run.run_id,
        prefix,
        tuple(i.key for i in found),
        sum(i.size for i in found),
    )


def _committed_attempts(unit: str, objects: dict[str, BlobInfo], blobs: BlobStore) -> set[str]:
    """The attempt folders (`attempts/{id}/`) the manifests directly in `unit` commit."""
    committed: set[str] = set()
    for key in objects:
        name = key[len(unit) :]
        if "/" in name or not name.endswith(".json"):
            continue
        try:
            attempt = json.loads(blobs.read_bytes(key)).get("attempt")
        except (PipelineError, ValueError, AttributeError):
            continue
        path = attempt.get("path") if isinstance(attempt, dict) else None
        if isinstance(path, str) and ATTEMPT_PATH.fullmatch(path):
            committed.add(path)
    return committed


def _uncommitted(run: RunRecord, blobs: BlobStore, objects: list[BlobInfo]) -> list[Removal]:
    """Each attempt folder of the run that no manifest beside it commits."""
    marker = f"/{ATTEMPTS_DIR}/"
    attempts: dict[tuple[str, str], list[BlobInfo]] = defaultdict(list)
    by_unit: dict[str, dict[str, BlobInfo]] = defaultdict(dict)
    for info in objects:
        unit, found, rest = info.key.partition(marker)
        if found:
            attempt = rest.split("/", 1)[0]
            attempts[(unit + "/", f"{ATTEMPTS_DIR}/{attempt}/")].append(info)
        else:
            by_unit[info.key.rsplit("/", 1)[0] + "/"][info.key] = info
    removals = []
    for (unit, path), infos in sorted(attempts.items()):
        if path not in _committed_attempts(unit, by_unit.get(unit, {}), blobs):
            removals.append(_removal(UNCOMMITTED_ATTEMPT, run, unit + path, infos))
    return removals


def plan_retention(
    blobs: BlobStore, ledger: RunLedger, *, runs_before: datetime, episodes_before: datetime
) -> RetentionPlan:
    """What the rules of the module docstring remove now; nothing is removed here."""
    plan = RetentionPlan()
    for run_id in ledger.store.all_ids():
        run = ledger.get(run_id)
        if run is None or not run_state(run).ended:
            continue  # a live run is never touched
        prefix = f"runs/{run.scene_id}/{run.run_id}/"
        objects = list(blobs.list(prefix))
        if run.updated_at < runs_before:
            plan.runs.append(run)
            if objects:
                plan.removals.append(_removal(RUN_PAST_RETENTION, run, prefix, objects))
            continue
        imported = run.stages.get("import")
        done = imported is not None and imported.state in _IMPORT_COMMITTED
        if (
            done
            and imported is not None
            and (imported.finished_at or run.updated_at) < (episodes_before)
        ):
            episodes = prefix + "episodes/"
            raw = [info for info in objects if info.key.startswith(episodes)]
            if raw:
                plan.removals.append(_removal(RAW_EPISODES, run, episodes, raw))
        plan.removals.extend(_uncommitted(run, blobs, objects))
    return plan


def apply_retention(blobs: BlobStore, ledger: RunLedger, plan: RetentionPlan) -> int:
    """Remove what the plan names; returns the bytes freed."""
    freed = 0
    for removal in plan.removals:
        sizes = dict(zip(removal.keys, _sizes(blobs, removal.keys), strict=True))
        for key in removal.keys:
            if blobs.delete(key):
                freed += sizes[key]
    for run in plan.runs:
        ledger.claims.release(run.scene_id, run.run_id)
        ledger.remove(run.run_id)
    return freed


def _sizes(blobs: BlobStore, keys: Iterable[str]) -> list[int]:
    return [info.size if (info := blobs.stat(key)) is not None else 0 for key in keys]
