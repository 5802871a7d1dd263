"""The status page `bp up` starts, on emulators: Firestore runs, Pub/Sub dead letters, replay."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from bp_common.cli import app
from bp_ops.stack import LocalStack
from typer.testing import CliRunner

pytestmark = pytest.mark.emulators
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(
        tmp_path_factory.mktemp("status-stack"),
        {"export": "tests.backbone.probe_stage:PROBE"},
        ack_deadline_s=10,
        min_backoff_s=0.5,
        max_backoff_s=1.0,
    ) as stack:
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def get(stack: LocalStack, path: str) -> Any:
    assert stack.status is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.status.port}{path}", timeout=30) as r:
        body = r.read().decode()
        return json.loads(body) if path.startswith("/api/") else body


def export_letters(stack: LocalStack) -> list[dict[str, Any]]:
    depths = {d["stage"]: d for d in get(stack, "/api/dead-letters")}
    return list(depths["export"]["letters"])


def test_bp_up_serves_the_status_page_over_the_stack_and_its_replay_reaches_the_service(
    stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.status is not None
    assert any(line.startswith("  status page: http://127.0.0.1:") for line in stack.describe())
    folder = tmp_path / "refused"
    folder.mkdir()
    (folder / "scene.usda").write_text("permanent")
    dropped = CliRunner().invoke(app, ["drop", str(folder)], env=stack.client_env())
    assert dropped.exit_code == 0, dropped.output
    run_id = dropped.output.split("\nrun ")[1].split()[0]

    (letter,) = wait_for("the dead letter", lambda: export_letters(stack))
    assert letter["run_id"] == run_id and letter["replay_count"] == 0
    run = get(stack, f"/api/runs/{run_id}")
    assert run["state"] == "failed" and run["stages"]["export"]["error"]["type"] == "InvalidInput"
    assert run_id in get(stack, "/")

    assert stack.status is not None
    form = urllib.parse.urlencode({"stage": "export"}).encode()
    replay = urllib.request.Request(
        f"http://127.0.0.1:{stack.status.port}/dead-letters/replay", data=form, method="POST"
    )
    with urllib.request.urlopen(replay, timeout=30) as answer:  # follows the 303
        assert "Replayed 1 dead letter(s) of stage export" in answer.read().decode()

    # The export service gets the message again, refuses it again, and it returns counted.
    again = wait_for(
        "the replayed message to be dead-lettered again",
        lambda: [x for x in export_letters(stack) if x["replay_count"] == 1],
    )
    assert [x["run_id"] for x in again] == [run_id]
