"""Each dataset's analytics as a panel of its run, and the learnability leaderboard across runs
and scenes, read from where import and `bp learnability` write them."""

from __future__ import annotations

import json
from typing import Any

from bp_ops.status import Guard, create_app
from bp_ops.status.analytics import analytics_key, learnability_key
from bp_ops.status.guard import TOKEN_COOKIE
from fastapi.testclient import TestClient

from tests.status.conftest import RecordedRuns

TOKEN = "printed-at-start-analytics-0123456789"


def browser(recorded: RecordedRuns) -> TestClient:
    """A browser that opened the address the page printed: it holds the token cookie."""
    http = TestClient(create_app(recorded.sources(), Guard(token=TOKEN)))
    http.cookies.set(TOKEN_COOKIE, TOKEN)
    return http


ANALYTICS: dict[str, Any] = {
    "episodes": {"valid": 12, "in_dataset": 10},
    "trajectory": {
        "per_task_in_dataset": {
            "pick_place_cube": {
                "episodes": 10,
                "success_rate": 1.0,
                "carry_optimality": {"n": 10, "mean": 0.71, "min": 0.6, "max": 0.8},
                "time_to_success_s": {"n": 10, "mean": 6.25, "min": 5.9, "max": 7.0},
                "idle_time_s": {"n": 10, "mean": 0.4, "min": 0.2, "max": 0.6},
            }
        }
    },
    "coverage": {"diversity": {"score": 0.83}},
    "language": {"instructions_total": 7},
    "contact": {"feature": "observation.contact_force"},
    "embodiment": {"done_by_only_some": {"open_door": ["fetch"]}, "attempted_by_only_some": {}},
}


def result(successes: int, evaluations: int, episodes: int, shuffled: bool = False) -> bytes:
    return json.dumps(
        {
            "success_rate": successes / evaluations,
            "successes": successes,
            "evaluations": evaluations,
            "training_episodes": episodes,
            "shuffled_actions": shuffled,
            "tasks": [{"task_id": "pick_place_cube"}],
            "policy": "behaviour cloning: numpy MLP 64x64, 300 epochs",
        }
    ).encode()


def test_a_run_shows_a_panel_per_dataset_and_serves_its_analytics_page(
    recorded: RecordedRuns,
) -> None:
    run = recorded.pipeline.ports.ledger.get(recorded.succeeded)
    assert run is not None
    blobs = recorded.pipeline.ports.blobs
    blobs.write_bytes(analytics_key(run, "probe"), json.dumps(ANALYTICS).encode())
    blobs.write_bytes(analytics_key(run, "probe", "analytics.html"), b"<h1>analytics</h1>")
    blobs.write_bytes(learnability_key("kitchen", run.run_id, "probe"), result(4, 5, 10))
    http = browser(recorded)

    panel = http.get(f"/runs/{run.run_id}/analytics")
    assert panel.status_code == 200
    text = panel.text
    assert "pick_place_cube" in text and "0.71" in text and "6.25" in text and "0.83" in text
    assert "observation.contact_force" in text and "open_door" in text
    assert "4/5 held-out runs succeed after training on 10 episodes" in text
    assert f'href="/runs/{run.run_id}/analytics"' in http.get(f"/runs/{run.run_id}").text
    page = http.get(f"/runs/{run.run_id}/analytics/probe")
    assert page.content == b"<h1>analytics</h1>"
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert http.get(f"/runs/{run.run_id}/analytics/..%2Fexport").status_code == 404


def test_the_leaderboard_ranks_learnability_across_runs_and_scenes(recorded: RecordedRuns) -> None:
    blobs = recorded.pipeline.ports.blobs
    blobs.write_bytes(learnability_key("kitchen", "run-a", "ur5e"), result(3, 10, 20))
    blobs.write_bytes(learnability_key("cabinet", "run-b", "franka_panda"), result(9, 10, 40))
    blobs.write_bytes(learnability_key("cabinet", "run-c", "fetch"), result(9, 10, 12))
    # A control run on shuffled actions is not a dataset's score.
    blobs.write_bytes(learnability_key("kitchen", "run-d", "ur5e"), result(0, 10, 20, True))
    http = browser(recorded)

    rows = http.get("/api/leaderboard").json()
    assert [(r["scene_id"], r["run_id"], r["robot"]) for r in rows] == [
        ("cabinet", "run-c", "fetch"),  # as good with fewer training episodes
        ("cabinet", "run-b", "franka_panda"),
        ("kitchen", "run-a", "ur5e"),
    ]
    assert rows[0]["success_rate"] == 0.9 and rows[0]["training_episodes"] == 12
    page = http.get("/leaderboard").text
    assert page.index("run-c") < page.index("run-b") < page.index("run-a")
    assert "run-d" not in page
