"""A run's true state, derived one way for `bp runs`, the status page and its JSON API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bp_common.cli import app
from bp_common.errors import InvalidInput, Unavailable
from bp_common.ledger import RunLedger, RunRecord, StageState
from bp_common.ledger.model import EmittedEvent
from bp_common.ledger.run_state import RunStateName, run_state
from bp_common.ledger.sqlite import SqliteLedgerStore
from bp_ops.status import Guard, StatusSources, create_app
from bp_ops.status.guard import TOKEN_COOKIE
from bp_ops.status.html import runs_page
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.status.conftest import RecordedRuns

EVENT = EmittedEvent(topic="t", data="{}", attributes={})
Step = Callable[[RunLedger, str], object]


def run_through(tmp_path: Path, *steps: Step) -> RunRecord:
    ledger = RunLedger(SqliteLedgerStore(tmp_path / "ledger.sqlite"))
    for step in steps:
        step(ledger, "run-00000000000000000001")
    record = ledger.get("run-00000000000000000001")
    assert record is not None
    return record


def started(stage: str) -> Step:
    return lambda ledger, run: ledger.stage_started(run, "kitchen", stage, 1)


def committed(stage: str) -> Step:
    return lambda ledger, run: ledger.stage_finished(
        run, "kitchen", stage, StageState.SUCCEEDED, emitted=EVENT
    )


def test_a_run_is_running_until_upload_commits_with_later_stages_pending(tmp_path: Path) -> None:
    steps = [started("export"), committed("export"), started("submit"), committed("submit")]
    state = run_state(run_through(tmp_path, *steps, started("import")))
    assert state.state is RunStateName.RUNNING and state.stage == "import"
    assert state.stages == {
        "export": "succeeded",
        "submit": "succeeded",
        "collect": "pending",
        "import": "running",
        "upload": "pending",
    }
    # every stage but the last committed: still not succeeded
    done = run_through(tmp_path / "b", *steps, committed("import"))
    assert run_state(done).state is RunStateName.RUNNING
    assert run_state(done).stages["upload"] == "pending"
    published = run_through(tmp_path / "c", *steps, committed("import"), committed("upload"))
    assert published.state == "succeeded"


def test_a_failed_run_names_the_stage_and_the_error(tmp_path: Path) -> None:
    record = run_through(
        tmp_path,
        started("export"),
        committed("export"),
        started("submit"),
        lambda ledger, run: ledger.stage_failed(
            run, "kitchen", "submit", InvalidInput("no robot fits"), final=True
        ),
    )
    state = run_state(record)
    assert (state.state, state.stage) == (RunStateName.FAILED, "submit")
    assert state.reason == "InvalidInput: no robot fits"
    assert state.describe() == "failed in submit: InvalidInput: no robot fits"
    assert state.stages["import"] == state.stages["upload"] == "not_run"


def test_a_retrying_stage_keeps_the_run_running_and_says_why(tmp_path: Path) -> None:
    record = run_through(
        tmp_path,
        started("export"),
        lambda ledger, run: ledger.stage_failed(
            run, "kitchen", "export", Unavailable("bucket down"), final=False
        ),
    )
    state = run_state(record)
    assert state.state is RunStateName.RUNNING
    assert state.reason == "retrying after Unavailable: bucket down"


def test_a_stopped_run_says_so_and_why(tmp_path: Path) -> None:
    record = run_through(
        tmp_path,
        started("export"),
        lambda ledger, run: ledger.stage_finished(
            run, "kitchen", "export", StageState.SKIPPED, note="superseded by a newer generation"
        ),
    )
    state = run_state(record)
    assert (state.state, state.stage) == (RunStateName.STOPPED, "export")
    assert state.reason == "superseded by a newer generation"
    quality = run_through(
        tmp_path / "q",
        *[started("export"), committed("export"), started("submit"), committed("submit")],
        started("import"),
        lambda ledger, run: ledger.stage_finished(
            run, "kitchen", "import", StageState.QUALITY_FAILED, note="franka_panda: min_episodes"
        ),
    )
    assert run_state(quality).describe() == "quality_failed in import: franka_panda: min_episodes"


def test_a_run_without_a_stage_is_pending() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = RunRecord(
        run_id="run-00000000000000000002", scene_id="s", created_at=now, updated_at=now
    )
    assert record.state == "pending"
    assert set(run_state(record).stages.values()) == {"pending"}


def test_bp_runs_the_status_page_and_its_json_api_agree(recorded: RecordedRuns) -> None:
    """Over runs made by real deliveries: one that published, one dead-lettered in export, and
    one still in flight (export and submit committed, import not started)."""
    p = recorded.pipeline
    in_flight = "run-0000000000000000000f"
    ledger = p.ports.ledger
    ledger.stage_started(in_flight, "kitchen", "export", 1)
    ledger.stage_finished(in_flight, "kitchen", "export", StageState.SUCCEEDED, emitted=EVENT)
    ledger.stage_started(in_flight, "kitchen", "submit", 1)
    ledger.stage_finished(in_flight, "kitchen", "submit", StageState.SUCCEEDED, emitted=EVENT)

    sources = StatusSources(ledger, recorded.sources().dead_letters, p.bus, p.ports.blobs)
    http = TestClient(create_app(sources, Guard(token="printed-token")))
    http.cookies.set(TOKEN_COOKIE, "printed-token")
    api = {r["run_id"]: r for r in http.get("/api/runs").json()}
    page = runs_page(ledger.list(), {}, scene=None, limit=50)
    cli = CliRunner()
    out = str(p.root)
    expected = {
        recorded.succeeded: ("succeeded", {"upload": "succeeded"}),
        recorded.dead_lettered: ("failed", {"export": "failed", "upload": "not_run"}),
        in_flight: ("running", {"submit": "succeeded", "import": "pending"}),
    }
    for run_id, (state, stages) in expected.items():
        shown = json.loads(cli.invoke(app, ["runs", "show", run_id, "--json", "--out", out]).output)
        assert api[run_id]["state"] == shown["state"] == state
        assert api[run_id]["pipeline"] == shown["pipeline"]
        assert stages.items() <= shown["pipeline"].items()
        row = page[page.index(f'data-run="{run_id}"') :].split("</tr>")[0]
        assert row.count(f"s-{state}") >= 1
        listed = cli.invoke(app, ["runs", "list", "--out", out]).output
        line = next(x for x in listed.splitlines() if x.startswith(run_id))
        assert f" {state} " in line and all(f"{k}:{v}" in line for k, v in stages.items())
    assert api[in_flight]["state_detail"] == {"stage": "submit", "reason": None}
    assert api[recorded.dead_lettered]["state_detail"]["stage"] == "export"


def test_a_published_run_with_robots_held_back_is_partially_published(tmp_path: Path) -> None:
    held = {"ur5e": "min_success_rate: 0 < 0.5"}
    steps = [started("export"), committed("export"), started("submit"), committed("submit")]
    importing = [
        started("import"),
        lambda ledger, run: ledger.stage_finished(
            run, "kitchen", "import", StageState.SUCCEEDED, emitted=EVENT, held_back=held
        ),
    ]
    # held back while upload still runs: the run is running, and already says who
    live = run_state(run_through(tmp_path, *steps, *importing, started("upload")))
    assert (live.state, live.held_back) == (RunStateName.RUNNING, held)
    done = run_state(run_through(tmp_path / "b", *steps, *importing, committed("upload")))
    assert (done.state, done.stage, done.held_back) == (
        RunStateName.PARTIALLY_PUBLISHED,
        "import",
        held,
    )
    assert done.describe() == "partially_published in import: held back ur5e: " + held["ur5e"]
    assert done.to_document()["held_back"] == held


def test_a_stage_worked_in_pieces_reads_as_its_pieces_until_it_commits(tmp_path: Path) -> None:
    pipeline = ("export", "submit", "collect", "import", "upload")
    steps = [started("export"), committed("export"), started("submit"), committed("submit")]
    shards = [started("collect/ur5e.pick.00000"), started("collect/ur5e.pick.00005")]
    running = run_state(run_through(tmp_path / "a", *steps, *shards), pipeline)
    assert running.state is RunStateName.RUNNING and running.stage == "collect"
    assert list(running.stages) == list(pipeline)  # the pieces are not stages of their own

    def shard_failed(ledger: RunLedger, run: str) -> object:
        error = InvalidInput("the mug is gone", task="pick")
        return ledger.stage_failed(run, "kitchen", "collect/ur5e.pick.00005", error, final=True)

    failed = run_state(run_through(tmp_path / "b", *steps, *shards, shard_failed), pipeline)
    assert failed.state is RunStateName.FAILED and failed.stage == "collect"
    assert failed.reason == "InvalidInput: ur5e.pick.00005: the mug is gone"

    fanned_in = run_through(tmp_path / "c", *steps, *shards, shard_failed, committed("collect"))
    assert run_state(fanned_in, pipeline).stages["collect"] == "succeeded"  # replayed, fanned in
