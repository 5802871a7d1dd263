"""Runs made by real deliveries on the embedded backends, for the status page's tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.config import Settings
from bp_ops.embedded import EmbeddedPipeline
from bp_ops.status import StatusSources

from tests.backbone.probe_stage import FOLLOW, PROBE, PUBLISH, READY

REPORT_HTML = b"<!doctype html><title>Quality report</title><h1>probe: 9 of 10 episodes passed</h1>"


@dataclass
class RecordedRuns:
    """A pipeline folder holding one succeeded run (with a quality report) and one dead letter."""

    pipeline: EmbeddedPipeline
    succeeded: str
    dead_lettered: str

    def sources(self) -> StatusSources:
        p = self.pipeline
        return StatusSources(p.ports.ledger, LocalDeadLetterQueue(p.bus), p.bus, p.ports.blobs)

    def waiting(self, stage: str = "export") -> int:
        return len(LocalDeadLetterQueue(self.pipeline.bus).peek(stage, 100))


def drop(tmp_path: Path, pipeline: EmbeddedPipeline, scene_id: str, body: str) -> str:
    folder = tmp_path / "scenes" / scene_id
    folder.mkdir(parents=True)
    (folder / "scene.usda").write_text(body)
    return pipeline.drain(pipeline.drop_scene(folder / "scene.usda")).run_id


@pytest.fixture
def recorded(tmp_path: Path) -> RecordedRuns:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    pipeline = EmbeddedPipeline(
        tmp_path / "out",
        settings,
        {"export": PROBE, "submit": FOLLOW, "import": READY, "upload": PUBLISH},
    )
    succeeded = drop(tmp_path, pipeline, "kitchen", "ok")
    dead_lettered = drop(tmp_path, pipeline, "broken", "permanent")
    pipeline.ports.blobs.write_bytes(
        f"runs/kitchen/{succeeded}/lerobot/probe/attempts/a01-probe/quality/quality_report.html",
        REPORT_HTML,
        content_type="text/html",
    )
    return RecordedRuns(pipeline, succeeded, dead_lettered)
