"""Shared set-up for the submit tests: tiny episodes, embedded pipelines, collectors on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bp_collector.service.server import CollectorServer
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.config import Settings
from bp_common.runtime.attempts import read_committed
from bp_common.runtime.delivery import Outcome, Verdict
from bp_export.stage import EXPORT
from bp_ops.embedded import EmbeddedPipeline
from bp_submit.config import SubmitConfig
from bp_submit.connection import forget_clients
from bp_submit.local_collector import stop_local_collectors
from bp_submit.stage import make_submit_stage

REPO = Path(__file__).resolve().parents[2]
KITCHEN = REPO / "examples" / "kitchen_table" / "scene.usda"
# Small images, a low frame rate and short episodes keep the suite fast; the code paths are
# the ones a full-size run takes.
TINY: dict[str, Any] = {
    "episodes_per_task": 1,
    "episode_seconds": 1.5,
    "episode_width": 64,
    "episode_height": 64,
    "episode_fps": 10,
}
TINY_ENV = {
    "BP_EPISODES_PER_TASK": "1",
    "BP_EPISODE_SECONDS": "1.5",
    "BP_EPISODE_WIDTH": "64",
    "BP_EPISODE_HEIGHT": "64",
    "BP_EPISODE_FPS": "10",
}


def exported_task_config(p: EmbeddedPipeline, scene_id: str, run_id: str) -> Any:
    """task_config.json as the run's committed export manifest names it."""
    committed = read_committed(
        p.ports.blobs, f"runs/{scene_id}/{run_id}/export/export_manifest.json"
    )
    assert committed is not None
    return json.loads(committed.read("task_config.json"))


def tiny(**overrides: Any) -> SubmitConfig:
    return SubmitConfig(**{**TINY, **overrides})


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{"robots": "franka_panda", **overrides})  # type: ignore[call-arg]


def pipeline(root: Path, config: SubmitConfig, **overrides: Any) -> EmbeddedPipeline:
    return EmbeddedPipeline(
        root, settings(**overrides), {"export": EXPORT, "submit": make_submit_stage(config)}
    )


def deliver_next(p: EmbeddedPipeline, stage: str) -> Verdict:
    """One delivery of the stage's next message, settled as the embedded drain settles it."""
    p.bus.reclaim()  # retries wait out a backoff; here the test decides when to retry
    message = p.bus.receive([stage])
    assert message is not None, f"no message waiting for {stage}"
    verdict = p.deliverers[stage].deliver(message)
    if verdict.outcome is Outcome.ACK:
        p.bus.ack(message)
    elif verdict.outcome is Outcome.DEAD_LETTER and verdict.error is not None:
        p.bus.dead_letter(message, verdict.error)
    else:
        p.bus.nack(message)
    return verdict


def dead_letters(p: EmbeddedPipeline, stage: str) -> int:
    with LocalDeadLetterQueue(p.bus).claim(stage, 100) as letters:
        return len(letters)


def robot_manifest(p: EmbeddedPipeline, key: str) -> dict[str, Any]:
    return json.loads(p.ports.blobs.read_bytes(key))  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """Each test gets new clients (and breakers), and the collectors it started are stopped."""
    yield
    forget_clients()
    stop_local_collectors()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    """A plaintext collector on loopback, in this process, with two simulation processes."""
    server = CollectorServer(tmp_path / "collector", "127.0.0.1", 0, tls=None, workers=2)
    server.start()
    yield server
    server.stop(grace_s=5)
