"""Per-robot publication: each robot's dataset is gated and published on its own.

A run whose UR5e misses its gates (its episodes end before the task is done) publishes the
Panda's dataset and ends `partially_published`, naming the robot held back and why; the held
back robot's report is committed and reachable from the status page. A redelivery re-emits
from the committed manifests, and a run where no robot passes still fails as `quality_failed`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts import decode, encode
from bp_common.contracts.events import DatasetsPublished, DatasetsReady, RobotEpisodes
from bp_common.ledger import StageState
from bp_common.ledger.run_state import RunStateName, run_state
from bp_import.stage import IMPORT
from bp_ops.embedded import EmbeddedPipeline, EmbeddedRun
from bp_ops.status import Guard, StatusSources, create_app
from bp_ops.status.guard import TOKEN_COOKIE
from bp_upload.stage import UPLOAD
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from .raw_episodes import (
    ROBOT,
    SCENE_ID,
    RecordedEpisodes,
    episodes_collected,
    record_short_episodes,
    stage_episodes,
)

RUN = "run-" + "c" * 20
OTHER = "ur5e"


@pytest.fixture(scope="module")
def short_ur5e(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return record_short_episodes(tmp_path_factory.mktemp("ur5e"), OTHER, [1, 2])


def pipeline(root: Path) -> EmbeddedPipeline:
    return EmbeddedPipeline(
        root,
        Settings(_env_file=None),  # type: ignore[call-arg]
        {"import": IMPORT, "upload": UPLOAD},
    )


def collect(p: EmbeddedPipeline, robots: dict[str, list[Path]]) -> EmbeddedRun:
    staged: list[RobotEpisodes] = [
        stage_episodes(p.ports.blobs, f"runs/{SCENE_ID}/{RUN}/", robot, folders)
        for robot, folders in robots.items()
    ]
    p.bus.publish(encode(episodes_collected(SCENE_ID, RUN, staged)))
    return p.drain(EmbeddedRun(SCENE_ID, RUN))


def test_a_robot_failing_its_gates_is_held_back_and_the_others_are_published(
    recorded: RecordedEpisodes, short_ur5e: list[Path], tmp_path: Path
) -> None:
    p = pipeline(tmp_path / "out")
    collect(p, {ROBOT: list(recorded.succeeded), OTHER: short_ur5e})

    [ready_envelope] = p.bus.published(DatasetsReady.TOPIC)
    ready = decode(ready_envelope.topic, ready_envelope.data, ready_envelope.attributes)
    assert isinstance(ready, DatasetsReady)
    assert [d.robot for d in ready.datasets] == [ROBOT]
    [held] = ready.held_back
    assert held.robot == OTHER and any(r.startswith("min_success_rate") for r in held.reasons)
    assert held.manifest == f"runs/{SCENE_ID}/{RUN}/lerobot/{OTHER}/held_back.json"
    assert held.report is not None and b"<html" in p.ports.blobs.read_bytes(held.report)[:200]
    report = json.loads(p.ports.blobs.read_bytes(held.report.replace(".html", ".json")))
    assert not report["passed"] and report["counts"]["succeeded"] == 0

    [published_envelope] = p.bus.published(DatasetsPublished.TOPIC)
    published = decode(
        published_envelope.topic, published_envelope.data, published_envelope.attributes
    )
    assert isinstance(published, DatasetsPublished)
    assert [d.robot for d in published.published] == [ROBOT]
    assert [h.robot for h in published.held_back] == [OTHER]
    firebase = tmp_path / "out" / "firebase" / "datasets" / SCENE_ID
    assert (firebase / ROBOT / "LATEST").is_file() and not (firebase / OTHER).exists()

    record = p.ports.ledger.get(RUN)
    assert record is not None and record.stages["upload"].state is StageState.SUCCEEDED
    state = run_state(record)
    assert (state.state, state.stage) == (RunStateName.PARTIALLY_PUBLISHED, "import")
    assert list(state.held_back) == [OTHER] and "min_success_rate" in state.held_back[OTHER]
    assert state.describe().startswith("partially_published in import: held back ur5e: ")

    cli = CliRunner()
    out = str(tmp_path / "out")
    listed = cli.invoke(app, ["runs", "list", "--out", out]).output
    assert " partially_published " in next(x for x in listed.splitlines() if x.startswith(RUN))
    shown = cli.invoke(app, ["runs", "show", RUN, "--out", out]).output
    assert "held back ur5e: min_episodes: 0 < 1, min_success_rate: 0 < 0.5" in shown
    document = json.loads(cli.invoke(app, ["runs", "show", RUN, "--json", "--out", out]).output)

    sources = StatusSources(p.ports.ledger, LocalDeadLetterQueue(p.bus), p.bus, p.ports.blobs)
    http = TestClient(create_app(sources, Guard(token="t")))
    http.cookies.set(TOKEN_COOKIE, "t")
    api = http.get(f"/api/runs/{RUN}").json()
    assert api["state"] == document["state"] == "partially_published"
    assert api["held_back"] == document["held_back"] == state.held_back
    assert {r["robot"] for r in api["quality_reports"]} == {ROBOT, OTHER}
    page = http.get(f"/runs/{RUN}").text
    assert "s-partially_published" in page and "Held back" in page
    held_report = http.get(f"/runs/{RUN}/reports/{OTHER}")
    assert held_report.status_code == 200 and held_report.text.startswith("<!")


def test_a_redelivery_re_emits_the_same_verdicts_without_redoing_work(
    recorded: RecordedEpisodes, short_ur5e: list[Path], tmp_path: Path
) -> None:
    p = pipeline(tmp_path)
    run = collect(p, {ROBOT: [recorded.succeeded[0]], OTHER: short_ur5e})
    prefix = f"runs/{SCENE_ID}/{RUN}/lerobot/"
    before = {b.key: b.generation for b in p.ports.blobs.list(prefix)}
    p.ports.ledger.store.transact(RUN, lambda d: {**(d or {}), "stages": {}})  # forget it
    p.bus.publish(p.bus.published("episodes-collected")[0])
    p.drain(run)
    assert {b.key: b.generation for b in p.ports.blobs.list(prefix)} == before
    first, second = p.bus.published(DatasetsReady.TOPIC)
    assert first.data == second.data


def test_when_no_robot_passes_the_run_fails_its_quality_gates(
    recorded: RecordedEpisodes, short_ur5e: list[Path], tmp_path: Path
) -> None:
    p = pipeline(tmp_path)
    collect(p, {ROBOT: list(recorded.failed), OTHER: short_ur5e})
    assert p.bus.published(DatasetsReady.TOPIC) == []
    record = p.ports.ledger.get(RUN)
    assert record is not None
    state = run_state(record)
    assert (state.state, state.stage) == (RunStateName.QUALITY_FAILED, "import")
    assert state.reason is not None and ROBOT in state.reason and OTHER in state.reason
    for robot in (ROBOT, OTHER):
        unit = f"runs/{SCENE_ID}/{RUN}/lerobot/{robot}/"
        assert p.ports.blobs.stat(unit + "held_back.json") is not None
        assert p.ports.blobs.stat(unit + "import_manifest.json") is None
