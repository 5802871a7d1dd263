"""The upload stage behind the delivery runtime on the emulators, and `bp upload` on its own."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bp_common import wiring
from bp_common.blobstore.gcs import GcsBlobStore, ensure_bucket
from bp_common.bus import Message
from bp_common.bus.local import LocalBus
from bp_common.cli import app
from bp_common.config import Settings
from bp_common.contracts import decode, encode
from bp_common.contracts.events import DatasetsPublished, DatasetsReady, RobotDataset
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore
from bp_common.runtime import Deliverer, Outcome, Ports
from bp_common.secrets import FileSecretStore
from bp_ops.emulators import EmulatorStack, free_port
from bp_upload.catalogue.firestore import FirestoreCatalogue
from bp_upload.catalogue.sqlite import SqliteCatalogue
from bp_upload.stage import UPLOAD
from google.cloud import firestore, storage
from typer.testing import CliRunner

from tests.conftest import unique_name
from tests.upload.datasets import make_dataset, put_dataset

RUN = "run-" + "5" * 20
BP = Path(sys.executable).with_name("bp")
SUMMARY = re.compile(r"(\d+) uploaded, (\d+) skipped, (\d+) verified")


def ready_event(store: GcsBlobStore, tmp_path: Path, robots: tuple[str, ...]) -> DatasetsReady:
    datasets = []
    for i, robot in enumerate(robots):
        prefix = f"runs/kitchen/{RUN}/lerobot/{robot}/"
        put_dataset(store, prefix, make_dataset(tmp_path / robot, seed=i))
        datasets.append(
            RobotDataset(
                robot=robot,
                prefix=prefix,
                manifest=prefix + "import_manifest.json",
                codebase_version="v2.1",
                episodes=6,
                frames=180,
                quality_pass_rate=0.8,
            )
        )
    return DatasetsReady(
        scene_id="kitchen", run_id=RUN, bucket=store.bucket_name, datasets=datasets
    )


def pipeline_bucket(
    emulators: EmulatorStack, storage_client: storage.Client
) -> tuple[GcsBlobStore, Settings]:
    pipeline_bucket, firebase_bucket = unique_name("bp-scenes"), unique_name("bp-datasets")
    for bucket in (pipeline_bucket, firebase_bucket):
        ensure_bucket(storage_client, bucket)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        project_id=emulators.project,
        bucket=pipeline_bucket,
        firebase_bucket=firebase_bucket,
        backend="cloud",
        ledger_backend="firestore",
    )
    return GcsBlobStore(storage_client, pipeline_bucket), settings


def upload_service(
    store: GcsBlobStore, settings: Settings, firestore_client: firestore.Client, tmp_path: Path
) -> Deliverer:
    """The upload stage as a service process gets it: adapters built once, from the environment."""
    ports = Ports(
        blobs=store,
        ledger=RunLedger(
            FirestoreLedgerStore(firestore_client, unique_name("runs").replace("-", "_"))
        ),
        publisher=LocalBus(tmp_path / "bus.sqlite"),
        secrets=FileSecretStore(tmp_path / "secrets"),
        workdir=tmp_path,
    )
    return wiring.deliverer(UPLOAD, ports, settings)


@pytest.mark.emulators
def test_datasets_ready_becomes_published_datasets_with_a_catalogue_entry_each(
    emulators: EmulatorStack,
    storage_client: storage.Client,
    firestore_client: firestore.Client,
    tmp_path: Path,
) -> None:
    store, settings = pipeline_bucket(emulators, storage_client)
    runtime = upload_service(store, settings, firestore_client, tmp_path)
    envelope = encode(ready_event(store, tmp_path, ("franka_panda", "ur5e")))
    message = Message("m-1", envelope.topic, envelope.data, envelope.attributes)
    verdict = runtime.deliver(message)

    assert verdict.outcome is Outcome.ACK and verdict.emitted is not None
    event = decode("datasets-published", verdict.emitted.data, verdict.emitted.attributes)
    assert isinstance(event, DatasetsPublished)
    assert [(p.robot, p.storage_bucket, p.uploaded, p.verified) for p in event.published] == [
        ("franka_panda", settings.firebase_bucket, 16, 16),
        ("ur5e", settings.firebase_bucket, 16, 16),
    ]
    assert verdict.emitted.attributes["run_id"] == RUN
    record = runtime.ports.ledger.get(RUN)
    assert record is not None and record.stages["upload"].state is StageState.SUCCEEDED
    assert record.stages["upload"].counts["verified"] == 32
    catalogue = FirestoreCatalogue(firestore_client)
    for p in event.published:
        entry = catalogue.get("kitchen", p.robot, RUN)
        assert entry is not None and entry.manifest == p.manifest and entry.quality_pass_rate == 0.8
        assert storage_client.bucket(p.storage_bucket).blob(p.manifest).exists()


@pytest.mark.emulators
def test_a_final_attempt_cleans_up_and_a_failed_cleanup_reaches_the_ledger_and_the_log(
    emulators: EmulatorStack,
    storage_client: storage.Client,
    firestore_client: firestore.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, settings = pipeline_bucket(emulators, storage_client)
    envelope = encode(ready_event(store, tmp_path, ("franka_panda",)))
    # The Firebase bucket is unreachable (nothing listens there), on the last delivery attempt.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("BP_UPLOAD_DEADLINE_S", "3")
    monkeypatch.setenv("BP_UPLOAD_REQUEST_TIMEOUT_S", "1")
    monkeypatch.setenv("BP_UPLOAD_CLEANUP_TIMEOUT_S", "1")
    runtime = upload_service(store, settings, firestore_client, tmp_path)
    message = Message(
        "m-2",
        envelope.topic,
        envelope.data,
        envelope.attributes,
        delivery_attempt=settings.max_delivery_attempts,
    )
    with caplog.at_level(logging.ERROR, logger="bp.upload"):
        verdict = runtime.deliver(message)

    assert verdict.outcome is Outcome.RETRY
    record = runtime.ports.ledger.get(RUN)
    assert record is not None
    stage = record.stages["upload"]
    assert stage.state is StageState.FAILED and stage.error is not None
    assert stage.error.type == "CleanupFailed" and "datasets/kitchen/franka_panda/" in str(
        stage.error.context
    )
    assert any(
        r.levelno == logging.ERROR and "cleanup of" in r.getMessage() for r in caplog.records
    )


def test_bp_upload_publishes_a_folder_offline_and_a_rerun_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("PIPELINE_ENV", "local")
    monkeypatch.setenv("BP_DATA_DIR", str(tmp_path / "bp-out"))
    folder = tmp_path / "runs" / "kitchen" / RUN / "lerobot" / "franka_panda"
    dataset = make_dataset(folder)
    runner = CliRunner()

    first = runner.invoke(app, ["upload", str(folder)])
    assert first.exit_code == 0, first.output
    assert SUMMARY.search(first.output).groups() == ("16", "0", "16")  # type: ignore[union-attr]
    published = tmp_path / "bp-out" / "firebase" / "datasets" / "kitchen" / "franka_panda"
    assert json.loads((published / "LATEST").read_text())["run_id"] == RUN
    assert (published / RUN / "meta" / "info.json").read_bytes() == dataset.files["meta/info.json"]
    [entry] = SqliteCatalogue(tmp_path / "bp-out" / "catalogue.sqlite").list()
    assert (entry.episodes, entry.frames, entry.quality_pass_rate) == (6, 180, 0.9)

    again = runner.invoke(app, ["upload", str(folder)])
    assert again.exit_code == 0 and "already published" in again.output


def test_bp_upload_refuses_a_folder_without_an_import_manifest(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["upload", str(tmp_path), "--scene-id", "kitchen"])
    assert result.exit_code == 2 and "import_manifest.json" in result.output


@pytest.mark.emulators
def test_bp_upload_killed_midway_resumes_where_it_stopped(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path
) -> None:
    bucket = unique_name("bp-datasets")
    ensure_bucket(storage_client, bucket)
    folder = tmp_path / "franka_panda"
    dataset = make_dataset(folder, episodes=15, episode_bytes=1_000_000)
    env = {
        **os.environ,
        **emulators.env(),
        "PIPELINE_ENV": "local",
        "BP_FIREBASE_BUCKET": bucket,
        "BP_DATA_DIR": str(tmp_path / "bp-out"),
        "PYTHONUNBUFFERED": "1",
    }
    command = [str(BP), "upload", str(folder), "--scene-id", "kitchen", "--run-id", RUN]
    first = subprocess.Popen(
        [*command, "--concurrency", "1", "-v"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert first.stdout is not None
    sent = 0
    for line in first.stdout:
        sent += line.strip().startswith("uploaded")
        if sent == 5:
            os.killpg(first.pid, signal.SIGKILL)  # no cleanup, no goodbye
            break
    first.wait(timeout=30)
    assert sent == 5 and first.returncode == -signal.SIGKILL

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    uploaded, skipped, verified = map(int, SUMMARY.search(second.stdout).groups())  # type: ignore[union-attr]
    assert skipped >= 5 and uploaded >= 1 and uploaded + skipped == verified == len(dataset.files)
    prefix = f"datasets/kitchen/franka_panda/{RUN}/"
    names = {b.name[len(prefix) :] for b in storage_client.list_blobs(bucket, prefix=prefix)}
    assert names == {*dataset.files, "dataset_manifest.json"}
