"""Every dataset the import writes carries its analytics, listed in its manifest, summed up in
its card; the fingers' contact forces are a documented feature; instructions are its tasks;
older episodes without recorded forces still import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from bp_common.cli import app
from bp_episode_format import FINGERTIP_FORCE
from typer.testing import CliRunner

from .raw_episodes import (
    ROBOT,
    RecordedEpisodes,
    edit_manifest,
    edit_states,
    states_of,
)


def import_folders(folders: list[Path], tmp_path: Path) -> Path:
    episodes = tmp_path / "episodes" / ROBOT
    for folder in folders:
        shutil.copytree(folder, episodes / folder.name)
    result = CliRunner().invoke(
        app, ["import", str(episodes.parent), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "out" / ROBOT


def test_the_dataset_ships_its_analytics_and_the_fingers_contact_forces(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    root = import_folders([*recorded.succeeded, *recorded.failed], tmp_path)

    listed = json.loads((root / "import_manifest.json").read_text())["files"]
    assert {"analytics/analytics.json", "analytics/analytics.html", "README.md"} <= set(listed)
    analytics = json.loads((root / "analytics" / "analytics.json").read_text())
    assert analytics["episodes"] == {"valid": 4, "in_dataset": 2}
    cube = analytics["trajectory"]["per_task_in_dataset"]["pick_place_cube"]
    assert cube["success_rate"] == 1.0 and 0 < cube["carry_optimality"]["mean"] <= 1
    assert 0 < cube["time_to_success_s"]["mean"] < cube["duration_s"]["mean"]
    assert analytics["trajectory"]["per_task"]["pick_place_cube"]["episodes"] == 2
    assert set(analytics["embodiment"]["matrix"]) == {"pick_place_cube", "pick_place_can"}
    assert analytics["coverage"]["diversity"]["score"] > 0
    assert analytics["contact"]["feature"] == "observation.contact_force"
    page = (root / "analytics" / "analytics.html").read_text()
    assert "Embodiment transfer" in page and "data:image/png;base64," in page
    card = (root / "README.md").read_text()
    assert "## Analytics" in card and "| pick_place_cube | 1 |" in card

    info = json.loads((root / "meta" / "info.json").read_text())
    feature = info["features"]["observation.contact_force"]
    fingers = info["features"]["observation.state"]["names"][7:]
    assert feature["shape"] == [6] and feature["names"] == [
        f"{finger}.{axis}" for finger in fingers for axis in ("fx", "fy", "fz")
    ]
    assert "newtons" in feature["description"]
    # The column holds the recorded forces of each episode, finger by finger.
    table = pq.read_table(next((root / "data").rglob("*.parquet")))
    episode = table.filter(table["episode_index"].to_numpy() == 0)
    written = np.stack(episode["observation.contact_force"].to_numpy(zero_copy_only=False))
    sources = sorted(recorded.succeeded, key=lambda p: p.name)
    recorded_forces = states_of(sources[0])[FINGERTIP_FORCE]
    np.testing.assert_allclose(
        written, recorded_forces.reshape(len(recorded_forces), -1).astype(np.float32)
    )
    assert np.abs(written).max() > 1.0  # the grasp squeezes


def test_each_tasks_instructions_become_the_datasets_tasks(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    lines = ["Put the cube on the plate.", "Place the cube onto the plate."]
    folders = []
    for source in recorded.succeeded:
        target = tmp_path / "sources" / source.name
        shutil.copytree(source, target)
        edit_manifest(lambda m: m.update(instructions=lines, task_id="pick_place_x"))(target)
        folders.append(target)
    root = import_folders(folders, tmp_path)

    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()["task"]
    assert sorted(tasks) == sorted(lines)
    language = json.loads((root / "analytics" / "analytics.json").read_text())["language"]
    assert language["tasks"]["pick_place_x"]["count"] == 2
    assert set(language["tasks"]["pick_place_x"]["episodes_per_instruction"].values()) == {1}


def forget_forces(arrays: dict[str, np.ndarray]) -> None:
    """As the collector wrote episodes before it recorded fingertip forces."""
    del arrays[FINGERTIP_FORCE]


def test_episodes_recorded_before_contact_forces_import_without_the_feature(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    folders = []
    for source in recorded.succeeded:
        target = tmp_path / "sources" / source.name
        shutil.copytree(source, target)
        edit_states(forget_forces)(target)
        folders.append(target)
    root = import_folders(folders, tmp_path)

    info = json.loads((root / "meta" / "info.json").read_text())
    assert "observation.contact_force" not in info["features"] and info["total_episodes"] == 2
    analytics = json.loads((root / "analytics" / "analytics.json").read_text())
    assert analytics["contact"]["feature"] is None and analytics["contact"]["recorded"] == 0
