"""The status page `bp up` starts, on emulators: Firestore runs, Pub/Sub dead letters, replay."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
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
    """What an API client with the printed token reads."""
    assert stack.status is not None and stack.status_token is not None
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.status.port}{path}",
        headers={"Authorization": f"Bearer {stack.status_token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        body = r.read().decode()
        return json.loads(body) if path.startswith("/api/") else body


def export_letters(stack: LocalStack) -> list[dict[str, Any]]:
    depths = {d["stage"]: d for d in get(stack, "/api/dead-letters")}
    return list(depths["export"]["letters"])


def test_bp_up_serves_the_status_page_over_the_stack_and_its_replay_reaches_the_service(
    stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.status is not None
    printed = [line for line in stack.describe() if line.startswith("  status page: ")]
    assert printed and f"/?token={stack.status_token}," in printed[0]
    base = f"http://127.0.0.1:{stack.status.port}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/api/runs", timeout=30)
    assert refused.value.code == 401
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

    browser = requests.Session()  # keeps the cookies a browser would
    assert browser.get(stack.status_url, timeout=30).url == f"{base}/"
    csrf = browser.get(f"{base}/api/csrf", timeout=30).json()["csrf_token"]
    answer = browser.post(  # follows the 303
        f"{base}/dead-letters/replay",
        data={"stage": "export", "csrf_token": csrf},
        headers={"Origin": base},
        timeout=30,
    )
    assert "Replayed 1 dead letter(s) of stage export" in answer.text

    # The export service gets the message again, refuses it again, and it returns counted.
    again = wait_for(
        "the replayed message to be dead-lettered again",
        lambda: [x for x in export_letters(stack) if x["replay_count"] == 1],
    )
    assert [x["run_id"] for x in again] == [run_id]
