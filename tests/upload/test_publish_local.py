"""Publishing on the embedded default: a folder for the pipeline bucket and one for Firebase.

The same DatasetPublisher runs here as on Firebase Storage; only the adapters differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_common.blobstore.local import LocalBlobStore
from bp_common.config import Settings
from bp_common.contracts import decode, encode
from bp_common.contracts.events import DatasetsPublished, DatasetsReady, RobotDataset
from bp_ops.embedded import EmbeddedPipeline, EmbeddedRun
from bp_upload.catalogue.sqlite import SqliteCatalogue
from bp_upload.destinations.folder import FolderDestination
from bp_upload.errors import DatasetRejected, SourceCorrupt
from bp_upload.options import UploadOptions
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import QualitySummary
from bp_upload.publication.publisher import DatasetPublisher, DatasetSource, PublishRequest
from bp_upload.publication.transfer import FileOutcome
from bp_upload.stage import UPLOAD

from tests.upload.datasets import Dataset, make_dataset, put_dataset

RUN = "run-" + "a" * 20
QUALITY = QualitySummary("v2.1", 6, 180, 0.9)


class Interrupted(BaseException):
    """Stands for the process being stopped mid-upload (SIGINT, an evicted instance)."""


def source_for(
    tmp_path: Path, scene: str, robot: str, run: str, seed: int = 7
) -> tuple[DatasetSource, Dataset]:
    store = LocalBlobStore(tmp_path / "bucket")
    prefix = f"runs/{scene}/{run}/lerobot/{robot}/"
    dataset = make_dataset(tmp_path / "made" / scene / run / robot, seed=seed)
    put_dataset(store, prefix, dataset)
    return DatasetSource(store, prefix, prefix + "import_manifest.json"), dataset


def request(
    source: DatasetSource, scene: str = "kitchen", robot: str = "franka_panda", run: str = RUN
) -> PublishRequest:
    return PublishRequest(DatasetLocation(scene, robot, run), source, QUALITY)


def published_files(dest: FolderDestination, loc: DatasetLocation) -> dict[str, bytes]:
    return {
        o.key[len(loc.prefix) :]: dest.store.read_bytes(o.key)
        for o in dest.list(loc.prefix)
        if o.key != loc.manifest_key
    }


def test_a_dataset_is_published_verified_with_its_manifest_latest_and_catalogue_entry(
    tmp_path: Path,
) -> None:
    source, dataset = source_for(tmp_path, "kitchen", "franka_panda", RUN)
    dest = FolderDestination(tmp_path / "firebase", bucket_name="bp-datasets")
    catalogue = SqliteCatalogue(tmp_path / "catalogue.sqlite")
    publication = DatasetPublisher(dest, UploadOptions(), catalogue=catalogue).publish(
        request(source)
    )

    loc = publication.location
    assert published_files(dest, loc) == dataset.files
    result = publication.result
    assert (result.files, result.uploaded, result.skipped, result.verified) == (16, 16, 0, 16)
    assert result.bytes == sum(len(v) for v in dataset.files.values()) and not result.failures
    manifest = json.loads(dest.store.read_bytes(loc.manifest_key))
    assert set(manifest["files"]) == set(dataset.files)
    assert (
        manifest["source"]["import_manifest_sha256"]
        == json.loads(json.dumps(manifest))["source"]["import_manifest_sha256"]
    )
    assert manifest["quality"]["quality_pass_rate"] == 0.9
    latest = json.loads(dest.store.read_bytes(loc.latest_key))
    assert latest["run_id"] == RUN and latest["manifest"] == loc.manifest_key
    for key in (o.key for o in dest.list(loc.prefix)):
        assert dest.store.stat(key).metadata.get("sha256") or key == loc.manifest_key  # type: ignore[union-attr]
    entry = catalogue.get("kitchen", "franka_panda", RUN)
    assert entry is not None and entry.manifest == loc.manifest_key and entry.files == 16
    assert entry.quality_pass_rate == 0.9 and entry.bytes == result.bytes


def test_republishing_a_published_run_is_a_no_op(tmp_path: Path) -> None:
    source, _ = source_for(tmp_path, "kitchen", "franka_panda", RUN)
    dest = FolderDestination(tmp_path / "firebase")
    publisher = DatasetPublisher(dest, UploadOptions())
    first = publisher.publish(request(source))
    before = {o.key: o.generation for o in dest.list("datasets/")}
    again = publisher.publish(request(source))
    assert again.result.already_published
    assert (again.result.uploaded, again.result.skipped, again.result.bytes) == (0, 16, 0)
    assert {o.key: o.generation for o in dest.list("datasets/")} == before
    assert again.latest == first.latest


def test_an_interrupted_upload_resumes_skipping_verified_objects(tmp_path: Path) -> None:
    source, dataset = source_for(tmp_path, "kitchen", "franka_panda", RUN)
    dest = FolderDestination(tmp_path / "firebase")
    seen: list[FileOutcome] = []

    def stop_after_four(outcome: FileOutcome) -> None:
        seen.append(outcome)
        if len(seen) == 4:
            raise Interrupted

    options = UploadOptions(concurrency=2)
    with pytest.raises(Interrupted):
        DatasetPublisher(dest, options, progress=stop_after_four).publish(request(source))
    loc = DatasetLocation("kitchen", "franka_panda", RUN)
    assert dest.fetch(loc.manifest_key) is None and dest.fetch(loc.latest_key) is None

    resumed = DatasetPublisher(dest, options).publish(request(source)).result
    assert resumed.skipped >= 4 and resumed.uploaded >= 1
    assert resumed.skipped + resumed.uploaded == resumed.verified == 16
    assert published_files(dest, loc) == dataset.files


def test_an_object_altered_at_the_destination_is_sent_again_on_resume(tmp_path: Path) -> None:
    source, dataset = source_for(tmp_path, "kitchen", "franka_panda", RUN)
    dest = FolderDestination(tmp_path / "firebase")

    def stop_at_once(outcome: FileOutcome) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        DatasetPublisher(dest, UploadOptions(concurrency=1), progress=stop_at_once).publish(
            request(source)
        )
    loc = DatasetLocation("kitchen", "franka_panda", RUN)
    present = list(dest.list(loc.prefix))
    victim = present[0]
    good = dest.store.read_bytes(victim.key)
    # Same size and metadata (it still claims the manifest's sha256), different bytes.
    dest.store.write_bytes(victim.key, bytes(b ^ 0xFF for b in good), metadata=victim.metadata)

    resumed = DatasetPublisher(dest, UploadOptions()).publish(request(source)).result
    assert resumed.skipped == len(present) - 1
    assert resumed.uploaded == 16 - resumed.skipped
    assert published_files(dest, loc) == dataset.files


def test_a_corrupt_source_fails_for_good_and_cleans_only_its_own_run(tmp_path: Path) -> None:
    dest = FolderDestination(tmp_path / "firebase")
    publisher = DatasetPublisher(dest, UploadOptions())
    neighbours = []
    for scene, run in (("scene_10", RUN), ("scene_1", "run-" + "b" * 20)):
        src, _ = source_for(tmp_path / scene / run, scene, "franka_panda", run)
        neighbours.append(publisher.publish(request(src, scene=scene, run=run)).location)
    # An unpublished neighbour too: a partial upload of scene_1's other run must survive.
    dest.store.write_bytes(f"datasets/scene_1/franka_panda/run-{'c' * 20}/partial.bin", b"keep")
    before = {o.key: o.generation for o in dest.list("datasets/")}

    source, dataset = source_for(tmp_path / "bad", "scene_1", "franka_panda", RUN)
    victim = "data/chunk-000/episode_000003.parquet"
    corrupt = bytearray(dataset.files[victim])
    corrupt[100] ^= 0x01  # same size, one bit flipped: only the sha256 can tell
    source.store.write_bytes(source.prefix + victim, bytes(corrupt))

    with pytest.raises(DatasetRejected) as caught:
        publisher.publish(request(source, scene="scene_1"))
    error = caught.value
    assert isinstance(error.cause, SourceCorrupt) and error.permanent
    assert error.kind == "SourceCorrupt" and error.context["file"] == victim
    loc = DatasetLocation("scene_1", "franka_panda", RUN)
    assert list(dest.list(loc.prefix)) == []
    assert {o.key: o.generation for o in dest.list("datasets/")} == before
    assert json.loads(dest.store.read_bytes(loc.latest_key))["run_id"] == "run-" + "b" * 20
    assert [n.scene_id for n in neighbours] == ["scene_10", "scene_1"]


def test_latest_moves_to_the_newest_run_and_never_back(tmp_path: Path) -> None:
    dest = FolderDestination(tmp_path / "firebase")
    publisher = DatasetPublisher(dest, UploadOptions())
    old_run, new_run = "run-" + "1" * 20, "run-" + "2" * 20
    old_src, _ = source_for(tmp_path / "old", "kitchen", "ur5e", old_run, seed=1)
    new_src, _ = source_for(tmp_path / "new", "kitchen", "ur5e", new_run, seed=2)
    publisher.publish(request(old_src, robot="ur5e", run=old_run))
    latest_key = DatasetLocation("kitchen", "ur5e", old_run).latest_key
    publisher.publish(request(new_src, robot="ur5e", run=new_run))
    assert json.loads(dest.store.read_bytes(latest_key))["run_id"] == new_run
    # A redelivery of the older run (after a lost ledger) must not take LATEST back.
    assert publisher.publish(request(old_src, robot="ur5e", run=old_run)).latest.run_id == new_run
    assert json.loads(dest.store.read_bytes(latest_key))["run_id"] == new_run


def test_the_stage_consumes_datasets_ready_and_emits_datasets_published(tmp_path: Path) -> None:
    pipeline = EmbeddedPipeline(tmp_path, Settings(_env_file=None), {"upload": UPLOAD})  # type: ignore[call-arg]
    robots = ("franka_panda", "ur5e")
    datasets = []
    for i, robot in enumerate(robots):
        prefix = f"runs/kitchen/{RUN}/lerobot/{robot}/"
        dataset = make_dataset(tmp_path / "made" / robot, seed=i)
        put_dataset(pipeline.ports.blobs, prefix, dataset)
        datasets.append(
            RobotDataset(
                robot=robot,
                prefix=prefix,
                manifest=prefix + "import_manifest.json",
                codebase_version="v2.1",
                episodes=6,
                frames=180,
                quality_pass_rate=0.75,
            )
        )
    ready = DatasetsReady(scene_id="kitchen", run_id=RUN, bucket="local", datasets=datasets)
    pipeline.bus.publish(encode(ready))
    pipeline.drain(EmbeddedRun("kitchen", RUN))

    [envelope] = pipeline.bus.published("datasets-published")
    event = decode("datasets-published", envelope.data, envelope.attributes)
    assert isinstance(event, DatasetsPublished)
    assert [p.robot for p in event.published] == list(robots)
    for p in event.published:
        assert p.uploaded == p.verified == 16 and p.skipped == 0 and p.bytes > 0
        assert (tmp_path / "firebase" / p.manifest).is_file()
        assert (tmp_path / "firebase" / f"datasets/kitchen/{p.robot}/LATEST").is_file()
    record = pipeline.ports.ledger.get(RUN)
    assert record is not None
    counts = record.stages["upload"].counts
    assert counts["uploaded"] == 32 and counts["verified"] == 32 and counts["failures"] == 0
    entries = SqliteCatalogue(tmp_path / "catalogue.sqlite").list(scene_id="kitchen")
    assert {e.robot for e in entries} == set(robots)
    assert all(e.quality_pass_rate == 0.75 and e.frames == 180 for e in entries)
