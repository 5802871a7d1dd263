"""Retention on the embedded folder (`bp gc`, decision 0077), over a run that really published:
raw episodes and uncommitted attempts go first, the whole run once past retention, and never a
live run's objects nor a published dataset."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts import encode
from bp_common.ledger import StageState
from bp_common.ledger.store import utcnow
from bp_common.runtime.attempts import read_committed
from bp_import.stage import IMPORT
from bp_ops.embedded import EmbeddedPipeline, EmbeddedRun
from bp_ops.retention import (
    RAW_EPISODES,
    RUN_PAST_RETENTION,
    UNCOMMITTED_ATTEMPT,
    apply_retention,
    plan_retention,
)
from bp_upload.stage import UPLOAD
from typer.testing import CliRunner

from .raw_episodes import ROBOT, SCENE_ID, RecordedEpisodes, episodes_collected, stage_episodes

ENDED = "run-" + "d" * 20
LIVE = "run-" + "e" * 20


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_retention_removes_what_is_past_it_and_never_a_live_run_or_a_published_dataset(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    p = EmbeddedPipeline(root, Settings(_env_file=None), {"import": IMPORT, "upload": UPLOAD})  # type: ignore[call-arg]
    blobs, ledger = p.ports.blobs, p.ports.ledger
    staged = stage_episodes(blobs, f"runs/{SCENE_ID}/{ENDED}/", ROBOT, [recorded.succeeded[0]])
    p.bus.publish(encode(episodes_collected(SCENE_ID, ENDED, [staged])))
    p.drain(EmbeddedRun(SCENE_ID, ENDED))
    ended = ledger.get(ENDED)
    assert ended is not None and ended.state == "succeeded"
    assert ended.expire_at is not None  # 90 days (BP_RETENTION_DAYS) after upload committed
    finished = ended.stages["upload"].finished_at
    assert finished is not None
    assert abs(ended.expire_at - timedelta(days=90) - finished) < timedelta(seconds=1)
    unit = f"runs/{SCENE_ID}/{ENDED}/lerobot/{ROBOT}/"
    stale = unit + "attempts/a02-crashed/meta/info.json"  # a delivery that died before its commit
    blobs.write_bytes(stale, b"{}")
    # a live run (import still working), its episodes and its attempt in progress
    stage_episodes(blobs, f"runs/{SCENE_ID}/{LIVE}/", ROBOT, [recorded.succeeded[1]])
    blobs.write_bytes(f"runs/{SCENE_ID}/{LIVE}/lerobot/{ROBOT}/attempts/a01-x/data.bin", b"1")
    ledger.stage_started(LIVE, SCENE_ID, "import", 1)
    live_objects = {b.key for b in blobs.list(f"runs/{SCENE_ID}/{LIVE}/")}
    published = tree(root / "firebase")
    assert any(name.endswith("LATEST") for name in published)

    # raw episodes and leftovers first: the run itself is within retention
    now = utcnow()
    plan = plan_retention(blobs, ledger, runs_before=now - timedelta(days=1), episodes_before=now)
    assert {(r.reason, r.prefix) for r in plan.removals} == {
        (RAW_EPISODES, f"runs/{SCENE_ID}/{ENDED}/episodes/"),
        (UNCOMMITTED_ATTEMPT, unit + "attempts/a02-crashed/"),
    }
    assert plan.runs == []
    freed = apply_retention(blobs, ledger, plan)
    assert freed == plan.bytes > 0
    assert list(blobs.list(f"runs/{SCENE_ID}/{ENDED}/episodes/")) == []
    assert blobs.stat(stale) is None
    committed = read_committed(blobs, unit + "import_manifest.json")
    assert committed is not None
    for name in committed.files:  # the committed dataset is whole
        committed.read(name)

    # a dry run past retention names the run and removes nothing
    cli = CliRunner()
    before = {b.key for b in blobs.list("runs/")}
    dry = cli.invoke(app, ["gc", "--dry-run", "--older-than", "0", "--out", str(root)])
    assert dry.exit_code == 0, dry.output
    assert f"would remove {RUN_PAST_RETENTION}: runs/{SCENE_ID}/{ENDED}/" in dry.output
    assert f"would remove ledger entry {ENDED}" in dry.output
    assert "would be freed" in dry.output
    assert {b.key for b in blobs.list("runs/")} == before and ledger.get(ENDED) is not None

    done = cli.invoke(app, ["gc", "--older-than", "0", "--out", str(root)])
    assert done.exit_code == 0, done.output
    assert f"removed {RUN_PAST_RETENTION}: runs/{SCENE_ID}/{ENDED}/" in done.output
    assert "freed" in done.output.splitlines()[-1]
    assert list(blobs.list(f"runs/{SCENE_ID}/{ENDED}/")) == []
    assert ledger.get(ENDED) is None
    # the live run and the published dataset are untouched
    assert {b.key for b in blobs.list(f"runs/{SCENE_ID}/{LIVE}/")} == live_objects
    live = ledger.get(LIVE)
    assert live is not None and live.stages["import"].state is StageState.RUNNING
    assert tree(root / "firebase") == published
