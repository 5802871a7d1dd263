"""The collector's gRPC contract over a real server with real mTLS: who may connect, the
handshake, idempotent job start, resumable watching, verified retrieval, cancel, limits."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.mujoco.recording import read_episode
from bp_collector.service.server import CollectorServer, load_server_tls
from bp_collector.service.servicer import Limits, WatchTiming
from bp_collector_api import API_VERSION, api_major, collector_pb2_grpc
from bp_collector_api import collector_pb2 as pb
from bp_common.secrets import FileSecretStore

from tests.collector.tls_certs import Identity, Pki, make_pki

TERMINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}
MAX_MESSAGE = 1024 * 1024
MAX_CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    """A collector on loopback with TLS and required client certificates, its key, certificate
    and client CA read through the file secrets adapter."""
    secrets = pki.write_collector_secrets(tmp_path_factory.mktemp("collector-secrets"))
    collector = CollectorServer(
        tmp_path_factory.mktemp("collector-data"),
        "127.0.0.1",
        0,
        tls=load_server_tls(FileSecretStore(secrets)),
        workers=2,
        limits=Limits(
            max_message_bytes=MAX_MESSAGE, max_chunk_bytes=MAX_CHUNK, max_episodes_per_job=100
        ),
        watch=WatchTiming(heartbeat_s=0.2, max_stream_s=0.5),
    )
    collector.start()
    yield collector
    collector.stop(grace_s=5)


def channel(server: CollectorServer, pki: Pki, identity: Identity | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert_pem,
        private_key=identity.key_pem if identity else None,
        certificate_chain=identity.cert_pem if identity else None,
    )
    return grpc.secure_channel(server.address, credentials)


@pytest.fixture(scope="module")
def stub(server: CollectorServer, pki: Pki) -> collector_pb2_grpc.CollectorStub:
    return stub_on(channel(server, pki, pki.client))


def stub_on(chan: grpc.Channel) -> collector_pb2_grpc.CollectorStub:
    return collector_pb2_grpc.CollectorStub(chan)  # type: ignore[no-untyped-call]


def request(key: str, episodes_per_task: int = 1, **overrides: Any) -> pb.StartCollectionRequest:
    graph, config = tabletop_scene("franka_panda")
    fields: dict[str, object] = {
        "job_key": key,
        "scene_id": graph["scene_id"],
        "robot": "franka_panda",
        "scene_graph_json": json.dumps(graph).encode(),
        "task_config_json": json.dumps(config).encode(),
        "episodes_per_task": episodes_per_task,
        "seed": 7,
        "camera": pb.CameraSpec(width=64, height=64, fps=10),
        "max_episode_seconds": 1.5,
        "labels": {"run_id": "run-test"},
    }
    fields.update(overrides)
    return pb.StartCollectionRequest(**fields)  # type: ignore[arg-type]


def watch_to_end(
    stub: collector_pb2_grpc.CollectorStub, job_id: str, after: int = 0
) -> tuple[list[pb.JobUpdate], int]:
    """Every event after `after`, reconnecting as the server recycles streams; and how many
    streams it took."""
    events: list[pb.JobUpdate] = []
    streams = 0
    cursor = after
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        streams += 1
        for update in stub.WatchJob(
            pb.WatchJobRequest(job_id=job_id, after_sequence=cursor), timeout=30
        ):
            if update.HasField("heartbeat"):
                assert update.sequence == cursor
                continue
            events.append(update)
            cursor = update.sequence
            if update.WhichOneof("event") == "state" and update.state in TERMINAL:
                return events, streams
    raise AssertionError("job did not finish")


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "plaintext"])
def test_clients_without_a_certificate_from_our_ca_are_refused(
    server: CollectorServer, pki: Pki, who: str
) -> None:
    if who == "plaintext":
        refused = grpc.insecure_channel(server.address)
    else:
        refused = channel(server, pki, None if who == "no certificate" else pki.rogue_client)
    with pytest.raises(grpc.RpcError) as caught:
        stub_on(refused).GetInfo(pb.GetInfoRequest(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    # The same server answers a client whose certificate our CA signed.
    accepted = stub_on(channel(server, pki, pki.client))
    assert accepted.GetInfo(pb.GetInfoRequest(), timeout=5).api_version == API_VERSION


def test_get_info_is_the_version_handshake_and_describes_the_running_backend(
    stub: collector_pb2_grpc.CollectorStub, server: CollectorServer
) -> None:
    info = stub.GetInfo(pb.GetInfoRequest(client_api_version=API_VERSION), timeout=5)
    assert api_major(info.api_version) == api_major(API_VERSION) == 1
    assert info.server_version and info.backend == pb.BACKEND_MUJOCO
    offer = server.backend.capabilities()
    assert offer.name == "mujoco"
    assert (
        list(info.robots) == list(offer.robots) == ["franka_panda", "ur5e", "ur10", "fetch", "gr1"]
    )
    cameras = {c.name: list(c.streams) for c in info.cameras}
    assert list(cameras) == list(offer.cameras)
    assert cameras["wrist"] == cameras["overhead"] == ["rgb", "depth", "segmentation"]
    assert info.limits.max_image_side == offer.max_image_side
    assert info.limits.max_episode_seconds == offer.max_episode_seconds
    assert info.limits.max_episodes_per_job == 100
    assert info.limits.max_message_bytes == MAX_MESSAGE
    assert info.limits.simulation_workers == 2 and info.limits.max_concurrent_jobs >= 1
    assert (info.episode_format, info.episode_format_version) == ("bp-raw-episode", 2)
    assert (info.default_width, info.default_height, info.default_fps) == (224, 224, 30)


def test_start_is_idempotent_by_job_key(
    stub: collector_pb2_grpc.CollectorStub, server: CollectorServer
) -> None:
    first = stub.StartCollection(request("run-idem/franka_panda"), timeout=10)
    again = stub.StartCollection(request("run-idem/franka_panda"), timeout=10)
    assert first.created and not again.created
    assert first.job.job_id == again.job.job_id
    assert first.job.progress.episodes_total == 2  # two tasks, one episode each
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartCollection(request("run-idem/franka_panda", episodes_per_task=3), timeout=10)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "different request" in caught.value.details()
    with server.store._lock:  # one job for the key, never a second one
        (jobs,) = server.store._conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE job_key = ?", ("run-idem/franka_panda",)
        ).fetchone()
    assert jobs == 1
    events, _ = watch_to_end(stub, first.job.job_id)
    assert events[-1].state == pb.JOB_STATE_SUCCEEDED


ORBIT = pb.Orbit(distance_m=1.0, elevation_deg=30.0, azimuth_deg=45.0)


def _placed(*placements: pb.CameraPlacement) -> pb.CameraSpec:
    return pb.CameraSpec(width=64, height=64, fps=10, placements=placements)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"robot": "hal9000"}, "robot"),
        ({"task_config_json": b"{not json"}, "not JSON"),
        ({"camera": pb.CameraSpec(width=63, height=64)}, "even"),
        ({"task_ids": ["no_such_task"]}, "no such task"),
        ({"episodes_per_task": 60}, "allows 100 per job"),
        ({"job_key": "spaces are not allowed"}, "job_key"),
        ({"camera": _placed(pb.CameraPlacement(camera="wrist", orbit=ORBIT))}, "on the hand"),
        ({"camera": _placed(pb.CameraPlacement(camera="front", orbit=ORBIT))}, "not among"),
        ({"camera": _placed(pb.CameraPlacement(camera="overhead"))}, "neither an orbit"),
        (
            {"camera": _placed(pb.CameraPlacement(camera="overhead", orbit=pb.Orbit()))},
            "distance 0.0 m",
        ),
    ],
)
def test_inputs_the_collector_cannot_run_are_invalid_arguments(
    stub: collector_pb2_grpc.CollectorStub, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartCollection(request("run-bad/x", **overrides), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()


def test_a_job_places_its_fixed_cameras_where_the_request_asks(
    stub: collector_pb2_grpc.CollectorStub, server: CollectorServer
) -> None:
    look_at = pb.LookAt(position=pb.Vec3(x=1.3, y=0.4, z=1.2), target=pb.Vec3(x=0.45, z=0.75))
    camera = pb.CameraSpec(
        cameras=["wrist", "overhead"],
        width=64,
        height=64,
        fps=10,
        placements=[pb.CameraPlacement(camera="overhead", look_at=look_at)],
    )
    job = stub.StartCollection(
        request("run-placed/franka_panda", task_ids=["pick_place_cube"], camera=camera),
        timeout=10,
    ).job
    events, _ = watch_to_end(stub, job.job_id)
    [result] = [e.episode for e in events if e.HasField("episode")]
    folder = server.data_dir / "jobs" / job.job_id / "episodes" / result.episode_id
    episode = read_episode(folder, verify=True)
    overhead = next(c for c in episode.manifest["cameras"] if c["name"] == "overhead")
    assert overhead["placement"]["position"] == [1.3, 0.4, 1.2]
    # Randomisation still jitters a placed camera, by at most 2 cm per axis.
    position = episode.states()["camera_position"][:, episode.cameras.index("overhead")]
    assert np.abs(position - [1.3, 0.4, 1.2]).max() <= 0.02


def test_a_message_over_the_size_limit_is_refused(
    stub: collector_pb2_grpc.CollectorStub,
) -> None:
    big = request("run-big/franka_panda", labels={"padding": "x" * (MAX_MESSAGE + 1)})
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartCollection(big, timeout=10)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_watch_streams_progress_and_results_and_resumes_from_any_sequence(
    stub: collector_pb2_grpc.CollectorStub,
) -> None:
    job = stub.StartCollection(
        request("run-watch/franka_panda", episodes_per_task=5), timeout=10
    ).job
    events, streams = watch_to_end(stub, job.job_id)
    sequences = [e.sequence for e in events]
    assert sequences == list(range(1, len(events) + 1))  # no gap, no repeat across reconnects
    assert streams >= 2  # the server recycles streams (0.5 s here); the cursor bridges them
    episodes = [e.episode for e in events if e.HasField("episode")]
    assert len(episodes) == len({e.episode_id for e in episodes}) == 10
    assert [e.state for e in events if e.WhichOneof("event") == "state"] == [
        pb.JOB_STATE_QUEUED,
        pb.JOB_STATE_RUNNING,
        pb.JOB_STATE_SUCCEEDED,
    ]
    final = events[-1].job
    assert final.progress.episodes_recorded == final.progress.episodes_total == 10
    assert final.progress.episodes_succeeded == sum(e.success for e in episodes)
    # Reconnecting after the third event replays exactly what came after it.
    replay, _ = watch_to_end(stub, job.job_id, after=3)

    def what(update: pb.JobUpdate) -> tuple[int, str]:
        kind = update.WhichOneof("event") or ""
        return update.sequence, update.episode.episode_id if kind == "episode" else str(
            update.state
        )

    assert [what(e) for e in replay] == [what(e) for e in events[3:]]


def test_episodes_are_retrieved_in_chunks_with_checksums(
    stub: collector_pb2_grpc.CollectorStub, tmp_path: Path
) -> None:
    job = stub.StartCollection(request("run-fetch/franka_panda"), timeout=10).job
    events, _ = watch_to_end(stub, job.job_id)
    [result, *_] = [e.episode for e in events if e.HasField("episode")]
    folder = tmp_path / result.episode_id
    order = []
    for chunk in stub.FetchEpisode(
        pb.FetchEpisodeRequest(job_id=job.job_id, episode_id=result.episode_id, chunk_bytes=4096),
        timeout=30,
    ):
        assert len(chunk.data) <= 4096
        target = folder / chunk.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as handle:
            assert handle.tell() == chunk.offset
            handle.write(chunk.data)
        if chunk.last:
            order.append(chunk.path)
            data = target.read_bytes()
            assert len(data) == chunk.file_size
            assert hashlib.sha256(data).hexdigest() == chunk.sha256
    assert order[-1] == "episode.json"  # the manifest comes last
    assert sorted(order) == sorted(f.path for f in result.files)
    assert hashlib.sha256((folder / "episode.json").read_bytes()).hexdigest() == (
        result.manifest_sha256
    )
    episode = read_episode(folder, verify=True)  # every file matches the episode's manifest
    assert episode.manifest["episode_id"] == result.episode_id
    assert episode.cameras == ["wrist", "overhead"]
    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.FetchEpisode(
                pb.FetchEpisodeRequest(job_id=job.job_id, episode_id="nope"), timeout=10
            )
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_a_file_altered_on_the_collector_is_never_served(
    stub: collector_pb2_grpc.CollectorStub, server: CollectorServer
) -> None:
    job = stub.StartCollection(request("run-tamper/franka_panda"), timeout=10).job
    events, _ = watch_to_end(stub, job.job_id)
    result = next(e.episode for e in events if e.HasField("episode"))
    states = server.data_dir / "jobs" / job.job_id / "episodes" / result.episode_id / "states.npz"
    data = bytearray(states.read_bytes())
    data[len(data) // 2] ^= 0xFF
    states.write_bytes(bytes(data))
    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.FetchEpisode(
                pb.FetchEpisodeRequest(job_id=job.job_id, episode_id=result.episode_id), timeout=10
            )
        )
    assert caught.value.code() is grpc.StatusCode.DATA_LOSS


def test_cancel_stops_scheduling_and_ends_the_watch(
    stub: collector_pb2_grpc.CollectorStub,
) -> None:
    job = stub.StartCollection(
        request("run-cancel/franka_panda", episodes_per_task=40), timeout=10
    ).job
    cancelled = stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id, reason="test"), timeout=5)
    assert cancelled.state == pb.JOB_STATE_CANCELLED and cancelled.error == "test"
    events, _ = watch_to_end(stub, job.job_id)
    assert events[-1].state == pb.JOB_STATE_CANCELLED
    time.sleep(1.0)
    after = stub.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=5)
    # At most the episodes already handed to the two simulation processes were recorded.
    assert after.progress.episodes_recorded <= 2 < after.progress.episodes_total == 80
    assert stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=5).state == (
        pb.JOB_STATE_CANCELLED
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetJob(pb.GetJobRequest(job_id="job-unknown"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
