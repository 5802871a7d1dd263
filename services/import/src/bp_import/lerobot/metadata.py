"""LeRobot metadata shapes: features, info.json, per-frame tables, tasks and episode tables.

Layout facts (codebase v3.0 and v2.1) are from ../shared/docs/formats.md; the code is ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from bp_import.lerobot.episode_frames import CodebaseVersion, DatasetSpec
from bp_import.lerobot.feature_stats import STAT_NAMES, FeatureStats
from bp_import.lerobot.video_encoding import VideoSettings

STATE = "observation.state"
ACTION = "action"
INDEX_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "frame_index",
    "episode_index",
    "index",
    "task_index",
)

DATA_PATH = {
    "v3.0": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "v2.1": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
}
VIDEO_PATH = {
    "v3.0": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "v2.1": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
}
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def features(
    spec: DatasetSpec, video: VideoSettings, codebase: CodebaseVersion
) -> dict[str, dict[str, Any]]:
    """info.json `features`: state, action, the extra vectors (each with its `description`),
    one video per camera, then the index columns."""
    result: dict[str, dict[str, Any]] = {
        STATE: {
            "dtype": "float32",
            "shape": [len(spec.state_names)],
            "names": list(spec.state_names),
        },
        ACTION: {
            "dtype": "float32",
            "shape": [len(spec.action_names)],
            "names": list(spec.action_names),
        },
    }
    for extra in spec.extra:
        result[extra.key] = {
            "dtype": "float32",
            "shape": [len(extra.names)],
            "names": list(extra.names),
            "description": extra.description,
        }
    for camera in spec.cameras:
        info: dict[str, Any] = {
            "video.height": camera.height,
            "video.width": camera.width,
            "video.codec": video.canonical_codec,
            "video.pix_fmt": video.pix_fmt,
            "video.fps": spec.fps,
            "video.channels": 3,
            "has_audio": False,
        }
        if codebase == "v2.1":
            info["video.is_depth_map"] = False
        else:
            info.update(video.info_fields())
            info["is_depth_map"] = False
        result[camera.video_key] = {
            "dtype": "video",
            "shape": [camera.height, camera.width, 3],
            "names": ["height", "width", "channels"],
            "info": info,
        }
    result["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for column in INDEX_COLUMNS[1:]:
        result[column] = {"dtype": "int64", "shape": [1], "names": None}
    return result


def info_json(
    spec: DatasetSpec,
    video: VideoSettings,
    codebase: CodebaseVersion,
    *,
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    chunks_size: int,
    data_files_size_in_mb: float,
    video_files_size_in_mb: float,
    total_chunks: int,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "codebase_version": codebase,
        "robot_type": spec.robot_type,
        "fps": spec.fps,
        "features": features(spec, video, codebase),
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": chunks_size,
    }
    if codebase == "v2.1":
        info["total_videos"] = total_episodes * len(spec.cameras)
        info["total_chunks"] = total_chunks
    else:
        info["data_files_size_in_mb"] = data_files_size_in_mb
        info["video_files_size_in_mb"] = video_files_size_in_mb
    info["splits"] = {"train": f"0:{total_episodes}"}
    info["data_path"] = DATA_PATH[codebase]
    info["video_path"] = VIDEO_PATH[codebase] if spec.cameras else None
    return info


def _vector_type(width: int) -> pa.DataType:
    # LeRobot stores a shape-(1,) feature as a scalar column, longer ones as fixed-size lists.
    return pa.float32() if width == 1 else pa.list_(pa.float32(), width)


def vector_widths(spec: DatasetSpec) -> dict[str, int]:
    """The float32 vector features in column order: state, action, then the extra ones."""
    return {
        STATE: len(spec.state_names),
        ACTION: len(spec.action_names),
        **{extra.key: len(extra.names) for extra in spec.extra},
    }


def frame_schema(spec: DatasetSpec) -> pa.Schema:
    """Per-frame parquet schema, with the `huggingface` metadata `datasets` reads back."""
    widths = vector_widths(spec)
    fields = [
        *(pa.field(name, _vector_type(width)) for name, width in widths.items()),
        pa.field("timestamp", pa.float32()),
        *(pa.field(column, pa.int64()) for column in INDEX_COLUMNS[1:]),
    ]
    hf_features: dict[str, Any] = {}
    for name, width in widths.items():
        value = {"dtype": "float32", "_type": "Value"}
        hf_features[name] = (
            value if width == 1 else {"feature": value, "length": width, "_type": "List"}
        )
    hf_features["timestamp"] = {"dtype": "float32", "_type": "Value"}
    for column in INDEX_COLUMNS[1:]:
        hf_features[column] = {"dtype": "int64", "_type": "Value"}
    metadata = {b"huggingface": json.dumps({"info": {"features": hf_features}}).encode()}
    return pa.schema(fields, metadata=metadata)


def _vector_array(values: NDArray[np.float32]) -> pa.Array:
    if values.shape[1] == 1:
        return pa.array(values[:, 0], type=pa.float32())
    flat = pa.array(values.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def frame_table(
    spec: DatasetSpec,
    *,
    state: NDArray[np.float32],
    action: NDArray[np.float32],
    timestamps: NDArray[np.float32],
    episode_index: int,
    first_index: int,
    task_index: int,
    extra: Mapping[str, NDArray[np.float32]] | None = None,
) -> pa.Table:
    n = state.shape[0]
    extra = extra or {}
    columns = [
        _vector_array(state),
        _vector_array(action),
        *(_vector_array(extra[feature.key]) for feature in spec.extra),
        pa.array(timestamps, type=pa.float32()),
        pa.array(np.arange(n, dtype=np.int64)),
        pa.array(np.full(n, episode_index, dtype=np.int64)),
        pa.array(np.arange(first_index, first_index + n, dtype=np.int64)),
        pa.array(np.full(n, task_index, dtype=np.int64)),
    ]
    return pa.Table.from_arrays(columns, schema=frame_schema(spec))


def tasks_table(tasks: Sequence[str]) -> pa.Table:
    """meta/tasks.parquet: column `task_index`, indexed by `task` the way pandas writes it."""
    pandas_metadata = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={b"pandas": json.dumps(pandas_metadata).encode()},
    )
    return pa.Table.from_arrays(
        [pa.array(range(len(tasks)), type=pa.int64()), pa.array(list(tasks), type=pa.string())],
        schema=schema,
    )


def _stat_type(stat: str, ndim: int) -> pa.DataType:
    if stat == "count":
        return pa.list_(pa.int64())
    nested: pa.DataType = pa.float64()
    for _ in range(ndim):
        nested = pa.list_(nested)
    return nested


def stats_feature_names(spec: DatasetSpec) -> list[str]:
    """Features that carry statistics, in info.json order (every feature has some)."""
    return [
        STATE,
        ACTION,
        *(f.key for f in spec.extra),
        *(c.video_key for c in spec.cameras),
        *INDEX_COLUMNS,
    ]


def episodes_schema(spec: DatasetSpec) -> pa.Schema:
    """v3.0 meta/episodes/*.parquet: locations, frame range, per-episode stats of each feature."""
    fields = [
        pa.field("episode_index", pa.int64()),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", pa.int64()),
        pa.field("data/chunk_index", pa.int64()),
        pa.field("data/file_index", pa.int64()),
        pa.field("dataset_from_index", pa.int64()),
        pa.field("dataset_to_index", pa.int64()),
    ]
    for camera in spec.cameras:
        prefix = f"videos/{camera.video_key}"
        fields += [
            pa.field(f"{prefix}/chunk_index", pa.int64()),
            pa.field(f"{prefix}/file_index", pa.int64()),
            pa.field(f"{prefix}/from_timestamp", pa.float64()),
            pa.field(f"{prefix}/to_timestamp", pa.float64()),
        ]
    image_keys = {c.video_key for c in spec.cameras}
    for feature in stats_feature_names(spec):
        ndim = 3 if feature in image_keys else 1
        fields += [
            pa.field(f"stats/{feature}/{stat}", _stat_type(stat, ndim)) for stat in STAT_NAMES
        ]
    fields += [
        pa.field("meta/episodes/chunk_index", pa.int64()),
        pa.field("meta/episodes/file_index", pa.int64()),
    ]
    return pa.schema(fields)


def flatten_episode_stats(stats: Mapping[str, FeatureStats]) -> dict[str, Any]:
    return {
        f"stats/{feature}/{name}": np.asarray(value).tolist()
        for feature, by_stat in stats.items()
        for name, value in by_stat.items()
    }
