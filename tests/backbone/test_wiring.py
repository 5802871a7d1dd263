"""The composition root builds a process's adapters once; the ports say what differs locally."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from bp_common import wiring
from bp_common.config import Settings
from bp_common.contracts.events import SceneUpload
from bp_common.ledger import StageState
from bp_common.runtime.stage import Ports, Stage, StageContext, StageOutput
from bp_common.runtime.uploads import scene_upload_ref
from bp_ops.embedded import EmbeddedPipeline

from tests.backbone import probe_stage


@dataclass
class Scratch:
    """A stage's own adapter: a folder of its own inside the process's workdir."""

    folder: Path
    builds: list[Path]


BUILT: list[Scratch] = []


def scratch(settings: Settings, ports: Ports) -> Scratch:
    built = Scratch(ports.workdir / "scratch", [])
    BUILT.append(built)
    return built


def handle(ctx: StageContext[Scratch], upload: SceneUpload) -> StageOutput:
    ctx.adapters.builds.append(ctx.adapters.folder / ctx.run_id)
    return probe_stage.handle(ctx, upload)  # type: ignore[arg-type]


STAGE = Stage(name="export", handle=handle, identify=scene_upload_ref, adapters=scratch)


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_stages_own_adapters_are_built_once_and_reach_every_delivery(tmp_path: Path) -> None:
    BUILT.clear()
    pipeline = EmbeddedPipeline(tmp_path / "out", settings(), {"export": STAGE})
    runs = []
    for body in ("ok", "ok\n", "ok\n\n"):
        folder = tmp_path / f"scene-{len(body)}" / "kitchen"
        folder.mkdir(parents=True)
        (folder / "scene.usda").write_text(body)
        runs.append(pipeline.drain(pipeline.drop_scene(folder / "scene.usda")))

    [built] = BUILT
    assert built.folder == (tmp_path / "out" / "scratch")
    assert built.builds == [built.folder / run.run_id for run in runs]
    for run in runs:
        record = pipeline.ports.ledger.get(run.run_id)
        assert record is not None and record.stages["export"].state is StageState.SUCCEEDED


def test_the_embedded_default_keeps_scratch_and_publications_in_its_own_folder(
    tmp_path: Path,
) -> None:
    ports = wiring.embedded(tmp_path, settings()).ports
    assert ports.workdir == tmp_path
    assert ports.publication_folder == tmp_path / wiring.LOCAL_PUBLISHED_DIR


@pytest.mark.emulators
@pytest.mark.usefixtures("emulators")
def test_a_service_keeps_scratch_under_bp_data_dir_and_publishes_to_the_cloud(
    tmp_path: Path,
) -> None:
    cloud = Settings(_env_file=None, backend="cloud", data_dir=tmp_path / "data")  # type: ignore[call-arg]
    ports = wiring.cloud(cloud).ports
    assert ports.workdir == tmp_path / "data"
    assert ports.publication_folder is None
