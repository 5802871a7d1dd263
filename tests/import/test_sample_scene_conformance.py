"""Datasets the import stage writes from the sample scenes load and decode in the real lerobot
0.6.1: each sample scene exported, short episodes simulated for every robot by the collector,
imported with `bp import` (v3.0), and checked."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bp_collector.backend import episode_id_for
from bp_collector.mujoco.episode import simulate_episode
from bp_common.cli import app
from bp_export.export import export_scene
from bp_scene_contract import read_scene_graph, read_task_config
from typer.testing import CliRunner

from ..conformance import check_dataset as check

pytestmark = pytest.mark.conformance

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EPISODES_PER_ROBOT = 2
# Two-second episodes end before their task does: let failed attempts in, to test the format.
PERMISSIVE_ENV = {
    "BP_QUALITY_REQUIRE_SUCCESS": "false",
    "BP_QUALITY_MIN_SCORE": "0",
    "BP_QUALITY_MIN_SUCCESS_RATE": "0",
    "BP_QUALITY_MIN_PASS_RATE": "0",
    "BP_QUALITY_MIN_COLLISION_FREE_RATE": "0",
}


@pytest.fixture(scope="module", params=["kitchen_table", "cabinet"])
def scene_episodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """EPISODES_DIR/<robot>/<episode_id>/ as `bp collect` lays it out, and episodes per robot."""
    scene: str = request.param
    export = export_scene(
        EXAMPLES / scene / "scene.usda", scene, environment="local", require_embeddings=False
    )
    graph = json.loads(export.files["scene_graph.json"])
    config = json.loads(export.files["task_config.json"])
    root = tmp_path_factory.mktemp(f"{scene}-episodes")
    counts = {}
    for entry in config["robots"]:
        tasks = entry["tasks"][:EPISODES_PER_ROBOT]
        for seed, task in enumerate(tasks):
            out = root / entry["robot"] / episode_id_for(scene, task, entry["robot"], seed)
            simulate_episode(
                read_scene_graph(graph),
                read_task_config(config),
                entry["robot"],
                task,
                seed,
                out,
                width=64,
                height=64,
                max_seconds=2.0,
            )
        if tasks:
            counts[entry["robot"]] = len(tasks)
    return root, counts


@pytest.fixture(scope="module")
def imported(
    scene_episodes: tuple[Path, dict[str, int]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`bp import` of the scene's episodes as v3.0 (v2.1, written by the same code, is checked in
    tests/import/test_conformance.py: lerobot converts it first, slowly)."""
    out = tmp_path_factory.mktemp("import-v3.0")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in PERMISSIVE_ENV.items():
            patch.setenv(name, value)
        result = CliRunner().invoke(
            app, ["import", str(scene_episodes[0]), "--out", str(out), "--format", "v3.0"]
        )
    assert result.exit_code == 0, result.output
    return out


def test_the_sample_scene_datasets_are_valid_in_lerobot(
    imported: Path, scene_episodes: tuple[Path, dict[str, int]]
) -> None:
    """Every robot's dataset."""
    simulated = scene_episodes[1]
    roots = sorted(p for p in imported.iterdir() if p.is_dir())
    assert [p.name for p in roots] == sorted(simulated)
    counts = {}
    for root in roots:
        manifest = json.loads((root / "import_manifest.json").read_text())
        assert manifest["codebase_version"] == "v3.0"
        # Validation may exclude an episode (a short run can cross a joint limit): every
        # simulated episode is either in the dataset or excluded with its reason.
        tally = manifest["counts"]
        assert tally["dataset_episodes"] + sum(tally["excluded"].values()) == simulated[root.name]
        assert tally["dataset_episodes"] >= 1
        counts[root.name] = tally["dataset_episodes"]
    checked = [(imported / robot, n) for robot, n in sorted(counts.items())]
    with ThreadPoolExecutor(max_workers=2) as pool:  # the check is mostly one core each
        outputs = list(pool.map(check, [root for root, _ in checked]))
    for output, (_, episodes) in zip(outputs, checked, strict=True):
        assert f"episodes {episodes}, frames" in output
