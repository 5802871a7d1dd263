"""The import stage end to end on the embedded ports: `episodes-collected` in, committed
datasets and `datasets-ready` out; redelivery re-emits without work; a failing gate publishes
nothing; `bp import` runs the same logic on local folders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts import decode, encode
from bp_common.contracts.events import DatasetsReady
from bp_common.ledger import StageState
from bp_import.import_config import QualitySettings
from bp_import.stage import IMPORT, make_import_stage
from bp_ops.embedded import EmbeddedPipeline, EmbeddedRun
from typer.testing import CliRunner

from .raw_episodes import (
    ROBOT,
    SCENE_ID,
    RecordedEpisodes,
    copy_episode,
    episodes_collected,
    stage_episodes,
)

RUN = "run-" + "a" * 20


def pipeline(root: Path, stage=IMPORT) -> EmbeddedPipeline:  # type: ignore[no-untyped-def]
    return EmbeddedPipeline(root, Settings(_env_file=None), {"import": stage})  # type: ignore[call-arg]


def collect(p: EmbeddedPipeline, run_id: str, folders: list[Path]) -> EmbeddedRun:
    robots = [stage_episodes(p.ports.blobs, f"runs/{SCENE_ID}/{run_id}/", ROBOT, folders)]
    p.bus.publish(encode(episodes_collected(SCENE_ID, run_id, robots)))
    return p.drain(EmbeddedRun(SCENE_ID, run_id))


def ready(p: EmbeddedPipeline) -> list[DatasetsReady]:
    return [
        decode(e.topic, e.data, e.attributes)  # type: ignore[misc]
        for e in p.bus.published(DatasetsReady.TOPIC)
    ]


def test_the_stage_commits_a_verified_dataset_and_emits_datasets_ready(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    p = pipeline(tmp_path)
    run = collect(p, RUN, [*recorded.succeeded, recorded.failed[0]])
    [event] = ready(p)
    [dataset] = event.datasets
    assert dataset.robot == ROBOT and dataset.codebase_version == "v3.0"
    unit = f"runs/{SCENE_ID}/{RUN}/lerobot/{ROBOT}/"
    # the dataset lies under the committed attempt's prefix; the manifest beside the attempts
    assert dataset.prefix.startswith(unit + "attempts/")
    assert dataset.manifest == unit + "import_manifest.json"
    assert dataset.episodes == 2 and dataset.quality_pass_rate == pytest.approx(2 / 3)
    blobs = p.ports.blobs
    manifest = json.loads(blobs.read_bytes(dataset.manifest))
    assert (manifest["format_version"], manifest["robot"], manifest["run_id"]) == (1, ROBOT, RUN)
    assert unit + manifest["attempt"]["path"] == dataset.prefix
    stored = {b.key[len(dataset.prefix) :] for b in blobs.list(dataset.prefix)}
    assert stored == set(manifest["files"])
    for name, entry in manifest["files"].items():
        data = blobs.read_bytes(dataset.prefix + name)
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["size"])
    assert {
        "meta/info.json",
        "ground_truth/ground_truth.json",
        "quality/quality_report.json",
        "quality/quality_report.html",
        "quality/contact_sheet.png",
    } <= set(manifest["files"])
    assert manifest["counts"]["frames"] == dataset.frames
    assert manifest["provenance"]["input"]["robot_manifest"].endswith(f"{ROBOT}/manifest.json")
    assert manifest["provenance"]["configuration"]["quality"]["min_score"] == 0.6
    report = json.loads(blobs.read_bytes(dataset.prefix + "quality/quality_report.json"))
    reasons = {e["episode_id"]: e["reason"] for e in report["episodes"]}
    assert sorted(reasons.values(), key=str) == [None, None, "task_failed"]
    html = blobs.read_bytes(dataset.prefix + "quality/quality_report.html").decode()
    assert html.count("data:image/png;base64,") == 5
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["import"].state is StageState.SUCCEEDED


def test_a_redelivery_re_emits_the_same_event_without_redoing_work(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    p = pipeline(tmp_path)
    run = collect(p, RUN, list(recorded.succeeded))
    prefix = f"runs/{SCENE_ID}/{RUN}/lerobot/"
    before = {b.key: b.generation for b in p.ports.blobs.list(prefix)}
    p.ports.ledger.store.transact(RUN, lambda d: {**(d or {}), "stages": {}})  # forget it
    p.bus.publish(p.bus.published("episodes-collected")[0])
    p.drain(run)
    assert {b.key: b.generation for b in p.ports.blobs.list(prefix)} == before
    first, second = p.bus.published(DatasetsReady.TOPIC)
    assert first.data == second.data


def test_a_failing_gate_writes_the_report_and_publishes_nothing_until_env_relaxes_it(
    recorded: RecordedEpisodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = pipeline(tmp_path)
    folders = [recorded.succeeded[0], *recorded.failed]  # success rate 1/3 < 0.5
    run = collect(p, RUN, folders)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["import"].state is StageState.QUALITY_FAILED
    assert "min_success_rate" in (record.stages["import"].note or "")
    assert ready(p) == []
    unit = f"runs/{SCENE_ID}/{RUN}/lerobot/{ROBOT}/"
    verdict = json.loads(p.ports.blobs.read_bytes(unit + "held_back.json"))
    assert any(r.startswith("min_success_rate") for r in verdict["reasons"])
    prefix = unit + verdict["attempt"]["path"]
    stored = {b.key[len(unit) :] for b in p.ports.blobs.list(unit)}
    assert stored == {  # the reports under the attempt's prefix, committed as held back
        "held_back.json",
        *(verdict["attempt"]["path"] + name for name in verdict["files"]),
    }
    assert set(verdict["files"]) == {
        "quality/quality_report.json",
        "quality/quality_report.html",
        "quality/contact_sheet.png",
    }
    report = json.loads(p.ports.blobs.read_bytes(prefix + "quality/quality_report.json"))
    assert not report["passed"] and report["dataset"] is None

    monkeypatch.setenv("BP_QUALITY_MIN_SUCCESS_RATE", "0.3")
    monkeypatch.setenv("BP_QUALITY_MIN_PASS_RATE", "0.3")
    collect(p, "run-" + "b" * 20, folders)
    [event] = ready(p)
    assert event.datasets[0].episodes == 1


def test_damaged_and_missing_episodes_are_reported_while_the_others_are_imported(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    damaged = copy_episode(recorded.succeeded[1], tmp_path / "episodes" / "zz-damaged")
    (damaged / "cameras" / "wrist" / "rgb.mp4").write_bytes(b"\x00" * 100)
    p = pipeline(
        tmp_path / "out",
        make_import_stage(QualitySettings(min_collision_free_rate=0.5, min_pass_rate=0.5)),
    )
    robots = [
        stage_episodes(
            p.ports.blobs, f"runs/{SCENE_ID}/{RUN}/", ROBOT, [*recorded.succeeded, damaged]
        )
    ]
    listing = json.loads(p.ports.blobs.read_bytes(robots[0].manifest))
    listing["episodes"].append({"episode_id": "ghost", "prefix": "ghost/"})
    p.ports.blobs.write_bytes(robots[0].manifest, json.dumps(listing).encode())
    # An attempt a killed collector left half-copied, which no manifest names: not an episode.
    p.ports.blobs.write_bytes(robots[0].prefix + "ep-0.attempt-1/episode.json", b'{"trunc')
    p.bus.publish(encode(episodes_collected(SCENE_ID, RUN, robots)))
    p.drain(EmbeddedRun(SCENE_ID, RUN))
    [event] = ready(p)
    assert event.datasets[0].episodes == 2
    dataset = event.datasets[0].prefix
    report = json.loads(p.ports.blobs.read_bytes(dataset + "quality/quality_report.json"))
    reasons = {e["source"]: e["reason"] for e in report["episodes"]}
    assert reasons["ghost"] == "not_committed" and reasons["zz-damaged"] == "size_mismatch"
    assert len(reasons) == 4 and "ep-0.attempt-1" not in reasons
    manifest = json.loads(p.ports.blobs.read_bytes(event.datasets[0].manifest))
    assert manifest["provenance"]["input"]["uncommitted_folders"] == 1


def test_bp_import_runs_the_stage_logic_on_local_folders_once(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    episodes = tmp_path / "episodes" / ROBOT
    for folder in recorded.succeeded:
        shutil.copytree(folder, episodes / folder.name)
    cli = CliRunner()
    out = tmp_path / "out"
    first = cli.invoke(app, ["import", str(episodes.parent), "--out", str(out), "--format", "v2.1"])
    assert first.exit_code == 0, first.output
    assert "2 in the dataset" in first.output and "committed" in first.output
    info = json.loads((out / ROBOT / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_episodes"] == 2
    manifest = json.loads((out / ROBOT / "import_manifest.json").read_text())
    assert manifest["codebase_version"] == "v2.1"
    assert "meta/episodes_stats.jsonl" in manifest["files"]
    again = cli.invoke(app, ["import", str(episodes.parent), "--out", str(out)])
    assert again.exit_code == 0 and "already imported" in again.output
    bad = cli.invoke(app, ["import", str(episodes.parent), "--out", str(out), "--format", "v9"])
    assert bad.exit_code == 2


def test_bp_import_exits_non_zero_when_the_gates_fail(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    episodes = tmp_path / "episodes" / ROBOT
    for folder in recorded.failed:
        shutil.copytree(folder, episodes / folder.name)
    result = CliRunner().invoke(
        app, ["import", str(episodes.parent), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert (tmp_path / "out" / ROBOT / "quality" / "quality_report.html").is_file()
    assert not (tmp_path / "out" / ROBOT / "import_manifest.json").exists()
