"""The submit stage end to end: exported scenes in, verified episodes and `episodes-collected`
out, through a real collector over gRPC."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from bp_collector.mujoco.recording import read_episode
from bp_collector.service.server import CollectorServer, ServerTls
from bp_collector_api import API_VERSION
from bp_common.contracts import decode
from bp_common.contracts.envelope import encode
from bp_common.contracts.events import EpisodesCollected, ExportSummary, SceneExported
from bp_common.ledger import StageState
from bp_common.runtime.delivery import Outcome

from tests.collector.tls_certs import make_pki
from tests.submit.conftest import (
    KITCHEN,
    dead_letters,
    deliver_next,
    exported_task_config,
    free_port,
    pipeline,
    robot_manifest,
    tiny,
)


def test_export_and_submit_end_with_verified_episodes_for_every_robot(tmp_path: Path) -> None:
    p = pipeline(tmp_path, tiny(embedded_collector="always"), robots=None)
    run = p.drain(p.drop_scene(KITCHEN))
    [envelope] = p.bus.published("episodes-collected")
    event = decode("episodes-collected", envelope.data, envelope.attributes)
    assert isinstance(event, EpisodesCollected) and event.run_id == run.run_id
    assert event.episodes_prefix == f"runs/kitchen_table/{run.run_id}/episodes/"
    tasks = exported_task_config(p, "kitchen_table", run.run_id)
    planned = {r["robot"]: len(r["tasks"]) for r in tasks["robots"] if r["tasks"]}
    assert len(planned) >= 2
    assert {r.robot: r.episodes for r in event.robots} == planned  # one episode per task
    bucket = tmp_path / "bucket"
    for robot in event.robots:
        manifest = robot_manifest(p, robot.manifest)
        assert manifest["counts"]["episodes"] == robot.episodes == len(manifest["episodes"])
        assert manifest["counts"]["succeeded"] == robot.succeeded
        assert manifest["counts"]["collision_free"] == robot.collision_free
        job = json.loads(p.ports.blobs.read_bytes(robot.prefix + "job.json"))
        assert job["job_id"] == manifest["job"]["job_id"]
        for entry in manifest["episodes"]:
            key = robot.prefix + entry["prefix"] + "episode.json"
            assert hashlib.sha256(p.ports.blobs.read_bytes(key)).hexdigest() == (
                entry["manifest_sha256"]
            )
            episode = read_episode(bucket / robot.prefix / entry["prefix"], verify=True)
            assert episode.manifest["robot"] == robot.robot
            assert episode.manifest["success"] == entry["success"]
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    submit = record.stages["submit"]
    assert submit.state is StageState.SUCCEEDED and submit.attempts == 1
    for robot in event.robots:
        assert submit.counts[f"{robot.robot}.episodes"] == robot.episodes
        rate = submit.counts[f"{robot.robot}.success_rate"]
        assert rate == pytest.approx(robot.succeeded / robot.episodes, abs=1e-4)
        assert 0 <= submit.counts[f"{robot.robot}.collision_free_rate"] <= 1
        assert robot.robot in (submit.note or "")
    assert submit.counts["episodes"] == sum(planned.values())
    assert (tmp_path / "collector" / "jobs.sqlite").is_file()  # started beside the bucket

    # A redelivered message of the committed stage re-emits the event and writes nothing.
    prefix = event.episodes_prefix
    before = {b.key: b.generation for b in p.ports.blobs.list(prefix)}
    p.ports.ledger.store.transact(run.run_id, lambda d: {**(d or {}), "stages": {}})
    p.bus.publish(p.bus.published("scenes-exported")[0])
    p.drain(run)
    assert {b.key: b.generation for b in p.ports.blobs.list(prefix)} == before
    first, second = p.bus.published("episodes-collected")
    assert json.loads(first.data) == json.loads(second.data)


def _exported_event(p: object, root: Path, config: dict[str, object]) -> SceneExported:
    """An export with the given task config, committed into the bucket as export writes it."""
    from bp_ops.embedded import EmbeddedPipeline

    assert isinstance(p, EmbeddedPipeline)
    prefix = "runs/kitchen_table/run-00000000000000000001/export/"
    graph = (KITCHEN.parent / "scene.usda").read_bytes()  # any bytes: the stage skips first
    files = {"scene_graph.json": graph, "task_config.json": json.dumps(config).encode()}
    for name, data in files.items():
        p.ports.blobs.write_bytes(prefix + name, data)
    manifest = json.dumps({"files": {n: {"sha256": hashlib.sha256(d).hexdigest(),
                                         "size": len(d)} for n, d in files.items()}}).encode()
    p.ports.blobs.write_bytes(prefix + "export_manifest.json", manifest)
    return SceneExported(
        scene_id="kitchen_table",
        run_id="run-00000000000000000001",
        bucket="local",
        source_object="scenes/kitchen_table/scene.usda",
        source_generation=1,
        export_prefix=prefix,
        manifest=prefix + "export_manifest.json",
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        summary=ExportSummary(objects=3, tasks=1 if config["tasks"] else 0, robots=[]),
    )


@pytest.mark.parametrize(
    "config",
    [
        {"schema_version": 1, "scene_id": "kitchen_table", "robots": [], "tasks": []},
        {"schema_version": 1, "scene_id": "kitchen_table", "tasks": [{"task_id": "t"}],
         "robots": [{"robot": "ur5e", "base_pose": None, "tasks": ["t"]},
                    {"robot": "franka_panda", "base_pose": {"position": [0, 0, 0]},
                     "tasks": []}]},
    ],
    ids=["no task kept", "no robot with a task"],
)
def test_a_scene_with_nothing_to_collect_is_skipped(
    tmp_path: Path, config: dict[str, object]
) -> None:
    p = pipeline(tmp_path, tiny(embedded_collector="always"))
    event = _exported_event(p, tmp_path, config)
    p.bus.publish(encode(event, {}))
    verdict = deliver_next(p, "submit")
    assert verdict.outcome is Outcome.ACK and verdict.emitted is None
    record = p.ports.ledger.get(event.run_id)
    assert record is not None and record.stages["submit"].state is StageState.SKIPPED
    assert "nothing to collect" in (record.stages["submit"].note or "")
    assert p.bus.published("episodes-collected") == []
    assert not (tmp_path / "collector").exists()  # no collector was needed


@pytest.mark.parametrize("case", ["major 2 collector", "no client certificate"])
def test_an_incompatible_collector_or_missing_identity_is_a_permanent_error(
    tmp_path: Path, case: str
) -> None:
    pki = make_pki()
    server = CollectorServer(
        tmp_path / "collector", "127.0.0.1", 0, workers=1,
        tls=ServerTls(key=pki.server.key_pem, cert=pki.server.cert_pem, client_ca=pki.ca.cert_pem),
        api_version="2.0.0" if case == "major 2 collector" else "1.4.0",
    )
    server.start()
    try:
        p = pipeline(tmp_path / "run", tiny(embedded_collector="never"),
                     collector_address=server.address)
        if case == "major 2 collector":  # mTLS through the secrets adapter: the embedded folder
            pki.write_submit_secrets(tmp_path / "run" / "secrets")
        run = p.drain(p.drop_scene(KITCHEN))
    finally:
        server.stop(grace_s=1)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    submit = record.stages["submit"]
    assert submit.state is StageState.FAILED and submit.attempts == 1  # not retried
    assert submit.error is not None and submit.error.permanent
    if case == "major 2 collector":
        assert submit.error.type == "IncompatibleCollector"
        assert "2.0.0" in submit.error.message and API_VERSION in submit.error.message
    else:
        assert submit.error.type == "UnsafeConfiguration"
        assert "collector-client-key" in submit.error.message
    assert dead_letters(p, "submit") == 1
    assert p.bus.published("episodes-collected") == []


def test_a_down_collector_opens_the_breaker_and_the_message_waits_without_loss(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = tiny(embedded_collector="never", collector_retry_budget_s=0.5,
                  collector_breaker_failures=2, collector_breaker_reset_s=2.0)
    p = pipeline(tmp_path / "run", config, collector_address=f"127.0.0.1:{port}",
                 collector_insecure=True)
    run = p.drop_scene(KITCHEN)
    assert deliver_next(p, "export").outcome is Outcome.ACK

    first = deliver_next(p, "submit")
    assert first.outcome is Outcome.RETRY and first.error is not None
    assert first.error.kind == "CollectorUnavailable" and not first.error.permanent
    started = time.monotonic()
    second = deliver_next(p, "submit")
    assert time.monotonic() - started < 1.0  # fails fast: no connection attempt at all
    assert second.outcome is Outcome.RETRY and second.error is not None
    assert "circuit breaker open" in str(second.error)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["submit"].error is not None
    assert not record.stages["submit"].error.permanent
    assert p.bus.pending(["submit"]) == 1 and dead_letters(p, "submit") == 0  # nothing lost

    server = CollectorServer(tmp_path / "collector", "127.0.0.1", port, tls=None, workers=2)
    server.start()
    try:
        time.sleep(2.0)  # the breaker lets a probe through after its reset time
        p.drain(run)
    finally:
        server.stop(grace_s=1)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.stages["submit"].state is StageState.SUCCEEDED
    assert record.stages["submit"].attempts == 3
    [collected] = p.bus.published("episodes-collected")
    event = decode("episodes-collected", collected.data, collected.attributes)
    tasks = exported_task_config(p, "kitchen_table", run.run_id)
    assert [(r.robot, r.episodes) for r in event.robots] == [  # type: ignore[attr-defined]
        ("franka_panda", len(tasks["robots"][0]["tasks"]))
    ]
    assert dead_letters(p, "submit") == 0
