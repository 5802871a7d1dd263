"""Upgrades stored run documents, one schema version at a time, to the current version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bp_common.errors import InvalidInput
from bp_common.ledger.model import SCHEMA_VERSION

Document = dict[str, Any]


def _v1_to_v2(doc: Document) -> Document:
    """v1 kept `status`, `started`/`finished` epoch seconds and a plain-text `error` per stage."""
    stages: dict[str, Any] = {}
    for name, old in (doc.get("stages") or {}).items():
        started = _from_epoch(old.get("started"))
        finished = _from_epoch(old.get("finished"))
        error = old.get("error")
        status = old.get("status", "running")
        stages[name] = {
            "state": {"ok": "succeeded", "done": "succeeded", "error": "failed"}.get(
                status, status
            ),
            "attempts": int(old.get("attempts", 1)),
            "started_at": started,
            "finished_at": finished,
            "duration_s": (finished - started).total_seconds() if started and finished else None,
            "counts": {k: float(v) for k, v in (old.get("counts") or {}).items()},
            "error": None
            if not error
            else {
                "type": "LegacyError",
                "message": str(error),
                "permanent": status in ("failed", "error"),
                "context": {},
                "at": finished or started or datetime.now(UTC),
            },
            "emitted": None,
            "note": None,
        }
    created = _from_epoch(doc.get("created")) or datetime.now(UTC)
    return {
        "schema_version": 2,
        "run_id": doc["run_id"],
        "scene_id": doc["scene_id"],
        "source": None,
        "created_at": created,
        "updated_at": _from_epoch(doc.get("updated")) or created,
        "stages": stages,
    }


def _v2_to_v3(doc: Document) -> Document:
    """v2 published every emitted event right after recording it, so each one was published."""
    stages = {
        name: {**stage, "published_at": stage.get("finished_at") if stage.get("emitted") else None}
        for name, stage in (doc.get("stages") or {}).items()
    }
    return {**doc, "schema_version": 3, "stages": stages}


def _from_epoch(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


STEPS: dict[int, Callable[[Document], Document]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(doc: Document) -> tuple[Document, bool]:
    """Returns the document at the current version, and whether anything changed."""
    version = int(doc.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise InvalidInput(
            f"run document has schema v{version}, newer than this code (v{SCHEMA_VERSION})",
            run_id=doc.get("run_id"),
        )
    changed = False
    while version < SCHEMA_VERSION:
        doc = STEPS[version](doc)
        version += 1
        changed = True
    return doc, changed
