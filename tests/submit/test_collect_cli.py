"""`bp collect EXPORT_DIR --out DIR`: collection alone on local files, resumable."""

from __future__ import annotations

import json
import sqlite3
from importlib.metadata import entry_points
from pathlib import Path

import typer
from bp_collector.mujoco.recording import read_episode
from bp_export.cli import export
from bp_submit.cli import collect
from typer.testing import CliRunner

from tests.submit.conftest import KITCHEN


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("export")(export)
    app.command("collect")(collect)
    return app


def test_the_commands_and_the_stage_are_registered() -> None:
    commands = {ep.name: ep.value for ep in entry_points(group="blueprint.commands")}
    assert commands["collect"] == "bp_submit.cli:collect"
    assert commands["collector"] == "bp_collector.cli:collector"
    stages = {ep.name: ep.value for ep in entry_points(group="blueprint.stages")}
    assert stages["submit"] == "bp_submit.stage:SUBMIT"


def test_bp_collect_collects_an_export_folder_and_resumes_without_new_work(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    exported = runner.invoke(cli(), ["export", str(KITCHEN), "--out", str(tmp_path / "export"),
                                     "--robots", "franka_panda"])
    assert exported.exit_code == 0, exported.output
    args = ["collect", str(tmp_path / "export"), "--out", str(tmp_path / "episodes"),
            "--robots", "franka_panda", "--seconds", "1.5", "--width", "64", "--height", "64"]
    first = runner.invoke(cli(), args)
    assert first.exit_code == 0, first.output
    tasks = json.loads((tmp_path / "export" / "task_config.json").read_text())["robots"]
    planned = len(tasks[0]["tasks"])
    assert f"{planned} episodes in" in first.output
    manifest = json.loads((tmp_path / "episodes" / "franka_panda" / "manifest.json").read_text())
    assert manifest["counts"]["episodes"] == planned
    for entry in manifest["episodes"]:
        episode = read_episode(tmp_path / "episodes" / "franka_panda" / entry["prefix"])
        assert episode.manifest["n_frames"] > 0 and episode.cameras == ["wrist", "overhead"]
    collection = json.loads((tmp_path / "episodes" / "collection_manifest.json").read_text())
    assert [r["robot"] for r in collection["robots"]] == ["franka_panda"]

    again = runner.invoke(cli(), args)
    assert again.exit_code == 0, again.output
    jobs = sqlite3.connect(tmp_path / "episodes" / ".collector" / "jobs.sqlite")
    assert jobs.execute("SELECT COUNT(*) FROM jobs").fetchone() == (1,)  # the same job again
    assert json.loads((tmp_path / "episodes" / "franka_panda" / "manifest.json").read_text()) == (
        manifest
    )


def test_bp_collect_refuses_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["collect", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "export_manifest.json" in result.output
