"""The embedded default over a folder, SQLite and the in-process bus, with a probe stage."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bp_common.bus import Publisher
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import Event, SceneExported, SceneUpload
from bp_common.errors import Unavailable
from bp_common.ledger import StageState
from bp_common.runtime.stage import Stage, StageContext, StageOutput
from bp_common.runtime.uploads import scene_upload_ref
from bp_common.wiring import deliverer
from bp_ops.embedded import EmbeddedPipeline
from typer.testing import CliRunner

from tests.backbone.probe_stage import PROBE, handle


def scene(tmp_path: Path, body: str, name: str = "kitchen") -> Path:
    folder = tmp_path / "scenes" / name
    folder.mkdir(parents=True)
    (folder / "scene.usda").write_text(body)
    return folder / "scene.usda"


def pipeline(root: Path, **settings: Any) -> EmbeddedPipeline:
    return EmbeddedPipeline(root, Settings(_env_file=None, **settings), {"export": PROBE})  # type: ignore[call-arg]


def test_a_scene_runs_commits_once_and_a_repeat_is_a_no_op(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drain(p.drop_scene(scene(tmp_path, "ok")))
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["export"].state is StageState.SUCCEEDED
    assert record.source is not None and record.source.object == "scenes/kitchen/scene.usda"
    emitted = p.bus.published("scenes-exported")
    assert len(emitted) == 1 and emitted[0].attributes["run_id"] == run.run_id

    again = p.drain(p.drop_scene(scene(tmp_path / "same", "ok")))  # same content: same generation
    assert again.run_id == run.run_id and again.deliveries == []
    markers = [b.key for b in p.ports.blobs.list(f"runs/kitchen/{run.run_id}/")]
    assert markers == [f"runs/kitchen/{run.run_id}/export/export_manifest.json"]


def test_a_duplicate_message_is_acked_and_emits_nothing_downstream(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "ok"))
    upload = p.bus.published("scene-uploads")[0]
    p.bus.publish(upload)  # GCS notifications may repeat
    p.drain(run)
    verdicts = [v for _, v in run.deliveries]
    assert [v.duplicate for v in verdicts] == [False, True]
    assert len(p.bus.published("scenes-exported")) == 1  # no duplicate cascades downstream


class BusDownOnce(Publisher):
    """The bus refuses the first event of a topic: a crash between commit and publish."""

    def __init__(self, bus: Publisher, topic: str) -> None:
        self.bus, self.topic, self.failed = bus, topic, False

    def publish(self, envelope: Envelope) -> str:
        if envelope.topic == self.topic and not self.failed:
            self.failed = True
            raise Unavailable("the bus is down", topic=envelope.topic)
        return self.bus.publish(envelope)


def test_a_committed_stage_whose_event_never_reached_the_bus_is_re_emitted_once(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    p.bus.min_backoff_s = 0.01
    ports = replace(p.ports, publisher=BusDownOnce(p.bus, "scenes-exported"))
    p.deliverers["export"] = deliverer(PROBE, ports, p.settings)
    run = p.drop_scene(scene(tmp_path, "ok"))
    p.bus.publish(p.bus.published("scene-uploads")[0])  # and a duplicate after the retry
    p.drain(run)
    assert [(v.outcome.value, v.duplicate) for _, v in run.deliveries] == [
        ("retry", False),  # committed and recorded, but the event did not go out
        ("ack", True),  # the next delivery re-emits the recorded event without work
        ("ack", True),  # the duplicate finds it published: nothing more
    ]
    assert len(p.bus.published("scenes-exported")) == 1
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["export"].published_at is not None
    assert record.stages["export"].attempts == 1  # the work ran once


def test_a_changed_scene_is_a_new_run(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    first = p.drain(p.drop_scene(scene(tmp_path, "ok")))
    second = p.drain(p.drop_scene(scene(tmp_path / "v2", "ok\n")))
    assert first.run_id != second.run_id
    assert len(p.ports.ledger.list()) == 2


def test_permanent_failure_is_recorded_dead_lettered_at_once_and_replayable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = pipeline(out)
    run = p.drain(p.drop_scene(scene(tmp_path, "permanent")))
    assert len(run.deliveries) == 1  # no retry storm
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    error = record.stages["export"].error
    assert record.stages["export"].state is StageState.FAILED and error is not None
    assert error.permanent and error.type == "InvalidInput"

    cli = CliRunner()
    listing = cli.invoke(app, ["dlq", "list", "--out", str(out)])
    assert "1 dead letter(s)" in listing.output
    assert "probe refuses this scene" in listing.output
    dry = cli.invoke(app, ["dlq", "replay", "--dry-run", "--out", str(out)])
    assert "1 would replay" in dry.output
    assert len(LocalDeadLetterQueue(p.bus).peek("export", 10)) == 1
    replayed = cli.invoke(app, ["dlq", "replay", "--scene", "kitchen", "--out", str(out)])
    assert "1 replayed" in replayed.output, replayed.output
    assert LocalDeadLetterQueue(p.bus).peek("export", 10) == []
    p.drain(run)  # the replayed message fails again and returns to the queue with its count
    letters = LocalDeadLetterQueue(p.bus).peek("export", 10)
    assert [x.replay_count for x in letters] == [1]


def test_replay_refuses_past_the_maximum_and_purge_asks_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = pipeline(out)
    run = p.drain(p.drop_scene(scene(tmp_path, "permanent")))
    cli = CliRunner()
    for _ in range(2):
        assert (
            "1 replayed"
            in cli.invoke(app, ["dlq", "replay", "--max-replays", "2", "--out", str(out)]).output
        )
        p.drain(run)
    refused = cli.invoke(app, ["dlq", "replay", "--max-replays", "2", "--out", str(out)])
    assert "0 replayed, 1 refused" in refused.output
    declined = cli.invoke(app, ["dlq", "purge", "--out", str(out)], input="n\n")
    assert declined.exit_code == 1 and len(LocalDeadLetterQueue(p.bus).peek("export", 10)) == 1
    purged = cli.invoke(app, ["dlq", "purge", "--out", str(out)], input="y\n")
    assert "1 purged" in purged.output
    assert LocalDeadLetterQueue(p.bus).peek("export", 10) == []


def test_transient_failures_retry_with_backoff_then_dead_letter_by_policy(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out", max_delivery_attempts=5)
    p.bus.min_backoff_s = 0.01
    run = p.drain(p.drop_scene(scene(tmp_path, "transient")))
    assert len(run.deliveries) == 5
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["export"].state is StageState.FAILED
    assert record.stages["export"].attempts == 5
    letters = LocalDeadLetterQueue(p.bus).peek("export", 10)
    assert (
        len(letters) == 1
        and letters[0].attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    )


def test_bp_runs_list_and_show_read_the_ledger(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = pipeline(out)
    run = p.drain(p.drop_scene(scene(tmp_path, "permanent")))
    cli = CliRunner()
    listing = cli.invoke(app, ["runs", "list", "--out", str(out)])
    assert run.run_id in listing.output and "export:failed" in listing.output
    shown = cli.invoke(app, ["runs", "show", run.run_id, "--out", str(out)])
    assert "error (permanent) InvalidInput: probe refuses this scene" in shown.output
    as_json = json.loads(
        cli.invoke(app, ["runs", "show", run.run_id, "--json", "--out", str(out)]).output
    )
    assert as_json["schema_version"] == 3
    assert cli.invoke(app, ["runs", "show", "run-nope", "--out", str(out)]).exit_code == 1


@pytest.mark.parametrize("bad", ["scene.txt", "missing/scene.usda"])
def test_bad_scene_paths_are_clear_errors(tmp_path: Path, bad: str) -> None:
    (tmp_path / "scene.txt").write_text("x")
    result = CliRunner().invoke(app, ["run", str(tmp_path / bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "scene file" in result.output


class BusDownAt(Publisher):
    """The bus refuses the n-th event of a topic once: a crash in the middle of a fan-out."""

    def __init__(self, bus: Publisher, topic: str, n: int) -> None:
        self.bus, self.topic, self.n, self.seen = bus, topic, n, 0

    def publish(self, envelope: Envelope) -> str:
        if envelope.topic == self.topic:
            self.seen += 1
            if self.seen == self.n:
                raise Unavailable("the bus is down", topic=envelope.topic)
        return self.bus.publish(envelope)


def fan_out(ctx: StageContext, upload: SceneUpload) -> StageOutput:
    first = handle(ctx, upload).event
    assert isinstance(first, SceneExported)
    events: list[Event] = [
        first.model_copy(update={"summary": first.summary.model_copy(update={"objects": n})})
        for n in range(3)
    ]
    return StageOutput.of_all(events, counts={"events": 3})


def test_a_commit_that_fans_out_is_re_emitted_whole_after_a_crash_mid_way(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    p.bus.min_backoff_s = 0.01
    ports = replace(p.ports, publisher=BusDownAt(p.bus, "scenes-exported", 2))
    stage = Stage(name="export", handle=fan_out, identify=scene_upload_ref)
    p.deliverers["export"] = deliverer(stage, ports, p.settings)
    run = p.drain(p.drop_scene(scene(tmp_path, "ok")))
    assert [(v.outcome.value, v.duplicate) for _, v in run.deliveries] == [
        ("retry", False),  # committed; the second of three events did not go out
        ("ack", True),  # the next delivery re-emits all three without work
    ]
    objects = [
        json.loads(e.data)["summary"]["objects"] for e in p.bus.published("scenes-exported")
    ]
    assert objects == [0, 0, 1, 2]  # at least once each: their consumers are idempotent
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    export = record.stages["export"]
    assert len(export.fanned_out) == 2 and export.published_at is not None
    assert export.attempts == 1
