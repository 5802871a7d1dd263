"""The ground-truth pack beside a LeRobot dataset: depth, segmentation, 2D boxes, cameras.

Layout (one folder per episode, grouped in chunks like LeRobot's):
    ground_truth.json                                  what is where; written last
    chunk-000/episode_000000/cameras.json              intrinsics and camera-to-world poses
    chunk-000/episode_000000/objects.json              segmentation id -> entity name
    chunk-000/episode_000000/boxes.parquet             one row per (frame, camera, object)
    chunk-000/episode_000000/<camera>/depth.mkv        FFV1 gray16le, millimetres, 0 = no return
    chunk-000/episode_000000/<camera>/segmentation.mkv FFV1 gray16le, entity ids
Both videos are lossless: decoding gives back the exact uint16 arrays. A stream the episode
already holds in exactly this format (`CameraFrames.depth_file`, `segmentation_file`: the raw
episode's) is copied, not decoded and encoded again: that was most of the pack's cost. The
boxes the collector recorded (`CameraFrames.segmentation_boxes`) are taken as they are, so a
copied segmentation is not decoded either; without them it is decoded for its boxes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bp_episode_format import object_boxes
from numpy.typing import NDArray

from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraSpec,
    DatasetSpec,
    EpisodeFramesError,
)
from bp_import.lerobot.video_encoding import (
    LosslessEncoder,
    is_lossless_stream,
    read_lossless_frames,
)
from bp_import.row_spool import json_rows
from bp_import.streamed_json import StreamedList, write_json

FORMAT_NAME = "bp-ground-truth"
FORMAT_VERSION = 1
INDEX_FILE = "ground_truth.json"
EPISODE_DIR = "chunk-{chunk:03d}/episode_{episode_index:06d}"

BOXES_SCHEMA = pa.schema(
    [
        pa.field("frame_index", pa.int32()),
        pa.field("camera", pa.string()),
        pa.field("object_id", pa.int32()),
        pa.field("label", pa.string()),
        pa.field("x_min", pa.int32()),
        pa.field("y_min", pa.int32()),
        pa.field("x_max", pa.int32()),
        pa.field("y_max", pa.int32()),
        pa.field("pixels", pa.int32()),
    ]
)

BoxRows = dict[str, list[Any]]


@dataclass(frozen=True)
class GroundTruthEpisode:
    """One episode's ground truth read back from a pack."""

    cameras: dict[str, Any]
    objects: dict[int, str]
    depth_mm: dict[str, NDArray[np.uint16]]
    segmentation: dict[str, NDArray[np.uint16]]
    boxes: pa.Table


class GroundTruthPackWriter:
    """Writes the pack episode by episode; the LeRobot writer runs its stream jobs in parallel."""

    def __init__(self, root: Path, spec: DatasetSpec, chunks_size: int, scratch: Path) -> None:
        self.root = root
        self.spec = spec
        self.chunks_size = chunks_size
        # The index's entry for each episode waits on disk (`scratch`, outside the pack).
        self._episodes = json_rows(scratch / "ground_truth_episodes.jsonl")
        root.mkdir(parents=True, exist_ok=True)

    def episode_dir(self, episode_index: int) -> Path:
        chunk = episode_index // self.chunks_size
        return self.root / EPISODE_DIR.format(chunk=chunk, episode_index=episode_index)

    def stream_jobs(
        self, episode_index: int, length: int, cameras: Mapping[str, CameraFrames]
    ) -> list[Callable[[], BoxRows | None]]:
        """One job per depth or segmentation stream; a segmentation job returns its box rows."""
        jobs: list[Callable[[], BoxRows | None]] = []
        folder = self.episode_dir(episode_index)
        for name, frames in cameras.items():
            camera = self.spec.camera(name)
            depth_copy = _copyable(frames.depth_file, camera)
            if depth_copy is not None:
                jobs.append(
                    partial(_copy_depth, folder / name / "depth.mkv", camera, depth_copy, length)
                )
            elif frames.depth_mm is not None:
                jobs.append(
                    partial(
                        _encode_depth,
                        folder / name / "depth.mkv",
                        camera,
                        frames.depth_mm,
                        length,
                        self.spec.fps,
                    )
                )
            segmentation_copy = _copyable(frames.segmentation_file, camera)
            if segmentation_copy is not None and frames.segmentation_boxes is not None:
                jobs.append(
                    partial(
                        _copy_segmentation,
                        folder / name / "segmentation.mkv",
                        camera,
                        segmentation_copy,
                        length,
                        frames.segmentation_boxes,
                    )
                )
            elif frames.segmentation is not None:
                jobs.append(
                    partial(
                        _encode_segmentation,
                        folder / name / "segmentation.mkv",
                        camera,
                        frames.segmentation,
                        length,
                        self.spec.fps,
                        segmentation_copy,
                    )
                )
        return jobs

    def commit_episode(
        self,
        episode_index: int,
        length: int,
        source_id: str | None,
        cameras: Mapping[str, CameraFrames],
        labels: Mapping[int, str],
        box_rows: list[BoxRows],
    ) -> None:
        """Write the episode's JSON and boxes once its streams are encoded."""
        folder = self.episode_dir(episode_index)
        folder.mkdir(parents=True, exist_ok=True)
        camera_doc = {
            name: _camera_record(self.spec.camera(name), frames)
            for name, frames in cameras.items()
            if frames.has_ground_truth
        }
        _write_json(
            folder / "cameras.json", {"episode_index": episode_index, "cameras": camera_doc}
        )
        _write_json(folder / "objects.json", {str(k): v for k, v in sorted(labels.items())})
        columns: BoxRows = {name: [] for name in BOXES_SCHEMA.names if name != "label"}
        for rows in box_rows:
            for key, values in rows.items():
                columns[key].extend(values)
        columns["label"] = [labels.get(i, "") for i in columns["object_id"]]
        table = pa.Table.from_pydict(columns, schema=BOXES_SCHEMA)
        pq.write_table(table, folder / "boxes.parquet")
        relative = folder.relative_to(self.root).as_posix()
        streams = {
            name: sorted(p.stem for p in (folder / name).glob("*.mkv"))
            for name in cameras
            if (folder / name).is_dir()
        }
        self._episodes.append(
            {
                "episode_index": episode_index,
                "source_id": source_id,
                "length": length,
                "path": relative,
                "streams": streams,
            }
        )

    def discard_episode(self, episode_index: int) -> None:
        shutil.rmtree(self.episode_dir(episode_index), ignore_errors=True)

    def finalize(self, dataset_dir: Path) -> Path:
        """Write the index last: a pack without it is incomplete."""
        index = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "dataset": os.path.relpath(dataset_dir.resolve(), self.root.resolve()),
            "robot_type": self.spec.robot_type,
            "fps": self.spec.fps,
            "cameras": [
                {"name": c.name, "width": c.width, "height": c.height} for c in self.spec.cameras
            ],
            "depth": {
                "file": "<camera>/depth.mkv",
                "codec": "ffv1",
                "container": "matroska",
                "pix_fmt": "gray16le",
                "unit": "mm",
                "invalid_value": 0,
                "lossless": True,
            },
            "segmentation": {
                "file": "<camera>/segmentation.mkv",
                "codec": "ffv1",
                "container": "matroska",
                "pix_fmt": "gray16le",
                "ids": "objects.json",
                "background_id": 0,
                "lossless": True,
            },
            "boxes": {
                "file": "boxes.parquet",
                "bounds": "inclusive pixel indices; x = column, "
                "y = row; one row per object id present in a frame (background skipped)",
            },
            "cameras_file": {
                "file": "cameras.json",
                "intrinsics": "pinhole, pixels",
                "extrinsics": "camera_to_world 4x4, one pose (static) or one per frame",
            },
            "episodes": StreamedList(lambda: self._episodes),
        }
        path = self.root / INDEX_FILE
        _write_json(path, index)
        return path


def _camera_record(camera: CameraSpec, frames: CameraFrames) -> dict[str, Any]:
    record: dict[str, Any] = {"width": camera.width, "height": camera.height}
    if frames.intrinsics is not None:
        k = frames.intrinsics
        record["intrinsics"] = {
            "fx": k.fx,
            "fy": k.fy,
            "cx": k.cx,
            "cy": k.cy,
            "width": k.width,
            "height": k.height,
            "matrix": k.matrix(),
        }
    if frames.camera_to_world is not None:
        pose = np.asarray(frames.camera_to_world, dtype=np.float64)
        record["extrinsics"] = {
            "convention": frames.extrinsics_convention,
            "frame": "world",
            "static": pose.ndim == 2,
            "camera_to_world": pose.tolist(),
        }
    return record


def _copyable(source: Path | None, camera: CameraSpec) -> Path | None:
    """`source` when it is already the pack's lossless format for this camera, else None."""
    if source is None or not is_lossless_stream(source, camera.width, camera.height):
        return None
    return source


def _packets(path: Path) -> int:
    """Frames of a lossless stream, counted without decoding (FFV1: one packet a frame)."""
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size > 0)


def _copy_depth(path: Path, camera: CameraSpec, source: Path, length: int) -> None:
    _check_count(_packets(source), length, camera, "depth_mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)


def _copy_segmentation(
    path: Path, camera: CameraSpec, source: Path, length: int, boxes: NDArray[np.int32]
) -> BoxRows:
    """The segmentation file copied and its recorded boxes taken: nothing decoded."""
    _check_count(_packets(source), length, camera, "segmentation")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    columns = ("frame_index", "object_id", "x_min", "y_min", "x_max", "y_max", "pixels")
    rows: BoxRows = {name: boxes[:, i].tolist() for i, name in enumerate(columns)}
    rows["camera"] = [camera.name] * len(boxes)
    return rows


def _encode_depth(
    path: Path, camera: CameraSpec, frames: Iterable[NDArray[np.uint16]], length: int, fps: int
) -> None:
    encoder = LosslessEncoder(path, camera.width, camera.height, fps)
    try:
        for frame in frames:
            encoder.encode(_uint16(frame, camera, "depth_mm"))
    finally:
        encoder.close()
    _check_count(encoder.frames, length, camera, "depth_mm")


def _encode_segmentation(
    path: Path,
    camera: CameraSpec,
    frames: Iterable[NDArray[np.uint16]],
    length: int,
    fps: int,
    source: Path | None = None,
) -> BoxRows:
    """The boxes of every frame; the stream encoded to `path`, or `source` copied there."""
    encoder = (
        None if source is not None else LosslessEncoder(path, camera.width, camera.height, fps)
    )
    rows: BoxRows = {name: [] for name in BOXES_SCHEMA.names if name != "label"}
    counted = 0
    try:
        for frame_index, frame in enumerate(frames):
            ids = _uint16(frame, camera, "segmentation")
            counted += 1
            if encoder is not None:
                encoder.encode(ids)
            for box in object_boxes(ids):
                rows["frame_index"].append(frame_index)
                rows["camera"].append(camera.name)
                rows["object_id"].append(box.object_id)
                rows["x_min"].append(box.x_min)
                rows["y_min"].append(box.y_min)
                rows["x_max"].append(box.x_max)
                rows["y_max"].append(box.y_max)
                rows["pixels"].append(box.pixels)
    finally:
        if encoder is not None:
            encoder.close()
    _check_count(counted, length, camera, "segmentation")
    if source is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    return rows


def _uint16(frame: NDArray[Any], camera: CameraSpec, stream: str) -> NDArray[np.uint16]:
    array = np.asarray(frame)
    if array.dtype != np.uint16 or array.shape != (camera.height, camera.width):
        raise EpisodeFramesError(
            f"{stream} frames must be ({camera.height}, {camera.width}) uint16",
            camera=camera.name,
            shape=array.shape,
            dtype=str(array.dtype),
        )
    return array


def _check_count(frames: int, length: int, camera: CameraSpec, stream: str) -> None:
    if frames != length:
        raise EpisodeFramesError(
            f"{stream} has another number of frames than the state",
            camera=camera.name,
            frames=frames,
            expected=length,
        )


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    write_json(tmp, document)
    tmp.replace(path)


def read_ground_truth_episode(root: Path, episode_index: int) -> GroundTruthEpisode:
    """Read one episode back from a pack (the round trip the tests check)."""
    index = json.loads((root / INDEX_FILE).read_text())
    entry = next(e for e in index["episodes"] if e["episode_index"] == episode_index)
    folder = root / entry["path"]
    cameras = json.loads((folder / "cameras.json").read_text())["cameras"]
    objects = {int(k): v for k, v in json.loads((folder / "objects.json").read_text()).items()}
    depth = {
        name: read_lossless_frames(folder / name / "depth.mkv")
        for name, streams in entry["streams"].items()
        if "depth" in streams
    }
    segmentation = {
        name: read_lossless_frames(folder / name / "segmentation.mkv")
        for name, streams in entry["streams"].items()
        if "segmentation" in streams
    }
    return GroundTruthEpisode(
        cameras=cameras,
        objects=objects,
        depth_mm=depth,
        segmentation=segmentation,
        boxes=pq.read_table(folder / "boxes.parquet"),
    )
