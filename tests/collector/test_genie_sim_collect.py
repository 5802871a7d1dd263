"""`bp collect --backend genie-sim` against `bp genie-sim serve`: the episodes pass `bp import`
and the real lerobot conformance check, and say which collector backend recorded them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.genie_sim_server import ServerProcess, free_port
from tests.conformance import check_dataset

REPO = Path(__file__).resolve().parents[2]
BP = Path(sys.executable).with_name("bp")
KITCHEN = REPO / "examples" / "kitchen_table" / "scene.usda"


def bp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BP), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PIPELINE_ENV": "local", "MUJOCO_GL": "egl", **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(free_port(), tmp_path_factory.mktemp("server") / "serve.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def collected(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("collect")
    exported = bp("export", str(KITCHEN), "--out", str(root / "export"), "--robots", "ur5e")
    assert exported.returncode == 0, exported.stderr
    done = bp(
        "collect", str(root / "export"), "--out", str(root / "episodes"), "--robots", "ur5e",
        "--width", "64", "--height", "64", "--seconds", "10",
        "--backend", "genie-sim", "--genie-sim-address", server.address,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GENIE_SIM" in done.stderr  # the collector's handshake names its backend
    return root / "episodes"


def test_bp_collect_on_genie_sim_writes_episodes_that_say_so(collected: Path) -> None:
    manifest = json.loads((collected / "ur5e" / "manifest.json").read_text())
    assert manifest["collector"]["backend"] == "BACKEND_GENIE_SIM"
    assert manifest["counts"]["episodes"] >= 1
    for entry in manifest["episodes"]:
        episode = json.loads((collected / "ur5e" / entry["prefix"] / "episode.json").read_text())
        assert episode["simulator"]["name"] == "genie-sim"


@pytest.mark.conformance
def test_its_episodes_pass_bp_import_and_the_lerobot_conformance_check(
    collected: Path, tmp_path: Path
) -> None:
    imported = bp("import", str(collected), "--out", str(tmp_path / "datasets"))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    dataset = tmp_path / "datasets" / "ur5e"
    counts = json.loads((dataset / "import_manifest.json").read_text())["counts"]
    assert counts["dataset_episodes"] >= 1
    report = check_dataset(dataset)
    assert f"episodes {counts['dataset_episodes']}, frames" in report


def test_a_collector_on_genie_sim_with_no_server_stops_at_start_with_a_typed_error(
    tmp_path: Path,
) -> None:
    done = bp(
        "collector", "serve", "--port", "0", "--data-dir", str(tmp_path / "collector"),
        env={"BP_COLLECTOR_BACKEND": "genie-sim",
             "BP_GENIE_SIM_ADDRESS": f"127.0.0.1:{free_port()}"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "no Genie Sim server answers" in done.stderr
