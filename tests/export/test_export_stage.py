"""The export stage end to end: a scene upload in, committed outputs and `scenes-exported` out."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts import decode
from bp_common.ledger import StageState
from bp_export.stage import EXPORT
from bp_ops.embedded import EmbeddedPipeline
from typer.testing import CliRunner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def pipeline(root: Path) -> EmbeddedPipeline:
    return EmbeddedPipeline(root, Settings(_env_file=None), {"export": EXPORT})  # type: ignore[call-arg]


def committed_files(p: EmbeddedPipeline, prefix: str) -> dict[str, bytes]:
    return {
        b.key[len(prefix) :]: p.ports.blobs.read_bytes(b.key) for b in p.ports.blobs.list(prefix)
    }


def test_kitchen_table_exports_verified_outputs_and_emits_the_event(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    run = p.drain(p.drop_scene(EXAMPLES / "kitchen_table" / "scene.usda"))
    [envelope] = p.bus.published("scenes-exported")
    event = decode("scenes-exported", envelope.data, envelope.attributes)
    unit = f"runs/kitchen_table/{run.run_id}/export/"
    # the files lie under the committed attempt's own prefix, the manifest beside the attempts
    assert event.export_prefix.startswith(unit + "attempts/")  # type: ignore[attr-defined]
    assert event.manifest == unit + "export_manifest.json"  # type: ignore[attr-defined]
    files = committed_files(p, event.export_prefix)  # type: ignore[attr-defined]
    manifest = json.loads(p.ports.blobs.read_bytes(event.manifest))  # type: ignore[attr-defined]
    assert manifest["attempt"]["path"] == event.export_prefix[len(unit) :]  # type: ignore[attr-defined]
    assert (
        set(files)
        == set(manifest["files"])
        >= {"scene_graph.json", "asset_index.json", "task_config.json", "asset_embeddings.json"}
    )
    for name, data in files.items():
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    graph = json.loads(files["scene_graph.json"])
    tasks = json.loads(files["task_config.json"])
    assert graph["frame"] == {"up_axis": "z", "units": "m", "handedness": "right"}
    assert any(e["relation"] == "on" for e in graph["edges"])
    assert event.summary.tasks > 0 and tasks["tasks"]  # type: ignore[attr-defined]
    assert {r["robot"] for r in tasks["robots"]} == {"franka_panda", "ur5e", "ur10", "fetch"}
    embeddings = json.loads(files["asset_embeddings.json"])
    assert embeddings["status"] == "present" and len(embeddings["assets"][0]["vector"]) == 384
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["export"].counts["tasks"] == event.summary.tasks  # type: ignore[attr-defined]


def test_a_redelivered_upload_of_a_committed_export_does_no_work(tmp_path: Path) -> None:
    p = pipeline(tmp_path)
    run = p.drain(p.drop_scene(EXAMPLES / "cabinet" / "scene.usda"))
    prefix = f"runs/cabinet/{run.run_id}/export/"
    before = {b.key: b.generation for b in p.ports.blobs.list(prefix)}
    p.ports.ledger.store.transact(
        run.run_id, lambda d: {**(d or {}), "stages": {}}
    )  # forget the ledger
    p.bus.publish(p.bus.published("scene-uploads")[0])
    p.drain(run)
    assert {b.key: b.generation for b in p.ports.blobs.list(prefix)} == before  # nothing rewritten
    first, second = p.bus.published("scenes-exported")
    assert first.data == second.data


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("#usda 1.0\n(\n  this is not usd", "SceneUnparsable"),
        (
            '#usda 1.0\n(\n    defaultPrim = "World"\n)\n'
            'def Xform "World" {\n  def Xform "Objects" {\n'
            '    def Cube "box" {\n      double size = 0\n    }\n  }\n}\n',
            "ZeroSizeObject",
        ),
    ],
)
def test_bad_scenes_are_dead_lettered_with_a_typed_error_and_nothing_committed(
    tmp_path: Path, content: str, error: str
) -> None:
    scene = tmp_path / "broken" / "scene.usda"
    scene.parent.mkdir()
    scene.write_text(content)
    p = pipeline(tmp_path / "out")
    run = p.drain(p.drop_scene(scene))
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["export"].state is StageState.FAILED
    failure = record.stages["export"].error
    assert failure is not None and failure.permanent and error in failure.type
    assert len(run.deliveries) == 1
    assert list(p.ports.blobs.list(f"runs/broken/{run.run_id}/")) == []


def test_a_superseded_generation_is_skipped(tmp_path: Path) -> None:
    scene = tmp_path / "k" / "scene.usda"
    scene.parent.mkdir()
    shutil.copy(EXAMPLES / "kitchen_table" / "scene.usda", scene)
    p = pipeline(tmp_path / "out")
    old = p.drop_scene(scene)
    scene.write_text(scene.read_text() + "\n")
    p.drop_scene(scene)
    p.drain(old)
    record = p.ports.ledger.get(old.run_id)
    assert record is not None and record.stages["export"].state is StageState.SKIPPED
    assert len(p.bus.published("scenes-exported")) == 1


def test_bp_export_runs_the_stage_logic_on_local_files_once(tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "out"
    first = cli.invoke(
        app, ["export", str(EXAMPLES / "kitchen_table" / "scene.usda"), "--out", str(out)]
    )
    assert first.exit_code == 0, first.output
    assert (out / "export_manifest.json").exists() and (out / "task_config.json").exists()
    again = cli.invoke(
        app, ["export", str(EXAMPLES / "kitchen_table" / "scene.usda"), "--out", str(out)]
    )
    assert "already exported" in again.output
    bad = tmp_path / "bad" / "scene.usda"
    bad.parent.mkdir()
    bad.write_text("garbage")
    failed = cli.invoke(app, ["export", str(bad), "--out", str(tmp_path / "o2")])
    assert failed.exit_code == 2 and "error:" in failed.output
    assert not (tmp_path / "o2" / "export_manifest.json").exists()
