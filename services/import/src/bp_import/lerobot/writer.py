"""Write one robot's episodes as a LeRobot dataset (codebase v3.0, or v2.1 on request).

Episodes are written as they come: each camera's frames stream through its encoder on a worker
thread while the per-frame table and statistics are computed, so memory holds one frame per
camera plus the numeric columns. A camera whose RGB file was already encoded with the dataset's
settings (`CameraFrames.rgb_file`, see `lerobot.video_copy`) has its packets copied instead, and
is decoded only for its statistics; a video file holds copied or encoded episodes, never both
(a change of kind starts the next file). Statistics are exact (see `lerobot.feature_stats`).
A ground-truth pack (depth, segmentation, boxes, cameras) is written beside the dataset when
episodes carry it.

An episode that turns out to be bad while streaming (a camera short of frames, a wrong shape)
is dropped: nothing of it is referenced by the dataset and the writer carries on.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bp_common.errors import AlreadyExists, InvalidInput
from numpy.typing import NDArray

from bp_import.lerobot.dataset_card import dataset_card
from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraSpec,
    CheckedEpisode,
    CodebaseVersion,
    DatasetSpec,
    EpisodeFrames,
    EpisodeFramesError,
    check_episode,
)
from bp_import.lerobot.feature_stats import (
    FeatureStats,
    NumericAccumulator,
    PixelHistogram,
    numeric_stats,
    stats_to_json,
)
from bp_import.lerobot.ground_truth import BoxRows, GroundTruthPackWriter
from bp_import.lerobot.metadata import (
    ACTION,
    DATA_PATH,
    EPISODES_PATH,
    INDEX_COLUMNS,
    STATE,
    VIDEO_PATH,
    episodes_schema,
    flatten_episode_stats,
    frame_schema,
    frame_table,
    info_json,
    stats_feature_names,
    tasks_table,
)
from bp_import.lerobot.video_copy import Mp4Remuxer, copyable_rgb
from bp_import.lerobot.video_encoding import Mp4Encoder, VideoSettings

MB = 1024 * 1024

VideoSink = Mp4Encoder | Mp4Remuxer
"""A camera's video file: frames encoded into it, or packets copied into it."""


class DatasetWriterError(InvalidInput):
    """The writer was used out of order (after finalize, with no episodes, ...)."""


@dataclass(frozen=True)
class EpisodeRecord:
    """Where one written episode lives in the dataset."""

    episode_index: int
    length: int
    task_index: int
    source_id: str | None
    data_file: str
    video_files: dict[str, str]
    from_timestamp: dict[str, float]


@dataclass(frozen=True)
class DatasetSummary:
    """What `finalize` wrote."""

    root: Path
    codebase_version: CodebaseVersion
    total_episodes: int
    total_frames: int
    tasks: list[str]
    episodes: list[EpisodeRecord]
    ground_truth_root: Path | None

    def files(self) -> list[Path]:
        """Every file of the dataset, listed now (a list of thousands is not kept)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@dataclass
class _Placement:
    """Where the current episode's rows and frames go, chosen before it is encoded."""

    data_file: str
    data_location: tuple[int, int]
    encoders: dict[str, VideoSink]
    video_files: dict[str, str]
    video_locations: dict[str, tuple[int, int]]
    from_timestamp: dict[str, float]
    start_bytes: dict[str, int] = field(default_factory=dict)
    close_after_episode: bool = False


class _Storage(Protocol):
    def place(
        self, episode_index: int, table: pa.Table, sources: Mapping[str, Path | None]
    ) -> _Placement: ...
    def commit(self, placement: _Placement, table: pa.Table) -> None: ...
    def drop(self, placement: _Placement) -> None: ...
    def close(self, pool: ThreadPoolExecutor) -> None: ...
    def abort(self) -> None: ...


class _FramesFile:
    """A v3.0 data file: episodes' rows gathered into row groups of at least `GROUP_FRAMES`.

    A parquet writer keeps every row group's metadata (some KiB) until it closes, so a row
    group per episode would grow memory with the episodes; whole episodes share a group.
    """

    GROUP_FRAMES = 16_384

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema)
        self._pending: list[pa.Table] = []
        self._frames = 0

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._frames += table.num_rows
        if self._frames >= self.GROUP_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._frames = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _next_location(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


class _ConcatenatedStorage:
    """v3.0: episodes appended to shared parquet and per-camera MP4 files, rotated by size."""

    def __init__(
        self,
        root: Path,
        spec: DatasetSpec,
        video: VideoSettings,
        chunks_size: int,
        data_mb: float,
        video_mb: float,
    ) -> None:
        self.root, self.spec, self.video = root, spec, video
        self.chunks_size = chunks_size
        self.data_limit, self.video_limit = data_mb * MB, video_mb * MB
        self._data_location = (0, 0)
        self._data_writer: _FramesFile | None = None
        self._data_bytes = 0
        self._video_location: dict[str, tuple[int, int]] = {c.name: (0, 0) for c in spec.cameras}
        self._encoders: dict[str, VideoSink] = {}
        self._last_episode_bytes: dict[str, int] = {}

    def _data_path(self) -> str:
        chunk, file = self._data_location
        return DATA_PATH["v3.0"].format(chunk_index=chunk, file_index=file)

    def _video_path(self, camera: CameraSpec) -> str:
        chunk, file = self._video_location[camera.name]
        return VIDEO_PATH["v3.0"].format(
            video_key=camera.video_key, chunk_index=chunk, file_index=file
        )

    def place(
        self, episode_index: int, table: pa.Table, sources: Mapping[str, Path | None]
    ) -> _Placement:
        if self._data_writer is not None and self._data_bytes + table.nbytes > self.data_limit:
            self._data_writer.close()
            self._data_writer = None
            self._data_location = _next_location(*self._data_location, self.chunks_size)
        for camera in self.spec.cameras:
            encoder = self._encoders.get(camera.name)
            source = sources.get(camera.name)
            expected = self._last_episode_bytes.get(camera.name, 0)
            if encoder is not None and (
                encoder.payload_bytes + expected > self.video_limit or not _takes(encoder, source)
            ):
                self._rotate_video(camera)
            if camera.name not in self._encoders:
                self._encoders[camera.name] = _open_sink(
                    self.root / self._video_path(camera), camera, source, self.spec, self.video
                )
        return _Placement(
            data_file=self._data_path(),
            data_location=self._data_location,
            encoders=dict(self._encoders),
            video_files={c.name: self._video_path(c) for c in self.spec.cameras},
            video_locations=dict(self._video_location),
            from_timestamp={name: e.seconds for name, e in self._encoders.items()},
            start_bytes={name: e.payload_bytes for name, e in self._encoders.items()},
        )

    def _rotate_video(self, camera: CameraSpec) -> None:
        self._encoders.pop(camera.name).close()
        self._video_location[camera.name] = _next_location(
            *self._video_location[camera.name], self.chunks_size
        )

    def commit(self, placement: _Placement, table: pa.Table) -> None:
        if self._data_writer is None:
            path = self.root / placement.data_file
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = _FramesFile(path, frame_schema(self.spec))
            self._data_bytes = 0
        self._data_writer.add(table)
        self._data_bytes += table.nbytes
        for name, encoder in placement.encoders.items():
            self._last_episode_bytes[name] = encoder.payload_bytes - placement.start_bytes[name]

    def drop(self, placement: _Placement) -> None:
        # A failed episode's frames cannot be cut out of an MP4: they stay at the end of the
        # current file, referenced by no episode, and later episodes start a new file. A file
        # holding nothing else is deleted and its name reused.
        for camera in self.spec.cameras:
            encoder = self._encoders.pop(camera.name, None)
            if encoder is None:
                continue
            # The encoder itself may be what failed; its file is abandoned either way.
            with suppress(av.error.FFmpegError, ValueError):
                encoder.close()
            if placement.from_timestamp[camera.name] == 0.0:
                encoder.path.unlink(missing_ok=True)
            else:
                self._video_location[camera.name] = _next_location(
                    *self._video_location[camera.name], self.chunks_size
                )

    def close(self, pool: ThreadPoolExecutor) -> None:
        if self._data_writer is not None:
            self._data_writer.close()
            self._data_writer = None
        # Flushing an encoder's lookahead is real encoding work: one camera per worker.
        list(pool.map(_close_sink, self._encoders.values()))
        self._encoders.clear()

    def abort(self) -> None:
        if self._data_writer is not None:
            self._data_writer.close()
            self._data_writer = None
        for encoder in self._encoders.values():
            encoder.close()
        self._encoders.clear()


class _PerEpisodeStorage:
    """v2.1: one parquet and one MP4 per camera for each episode."""

    def __init__(
        self, root: Path, spec: DatasetSpec, video: VideoSettings, chunks_size: int
    ) -> None:
        self.root, self.spec, self.video, self.chunks_size = root, spec, video, chunks_size
        self._open: list[VideoSink] = []

    def place(
        self, episode_index: int, table: pa.Table, sources: Mapping[str, Path | None]
    ) -> _Placement:
        chunk = episode_index // self.chunks_size
        videos = {
            c.name: VIDEO_PATH["v2.1"].format(
                episode_chunk=chunk, video_key=c.video_key, episode_index=episode_index
            )
            for c in self.spec.cameras
        }
        encoders = {
            c.name: _open_sink(
                self.root / videos[c.name], c, sources.get(c.name), self.spec, self.video
            )
            for c in self.spec.cameras
        }
        self._open = list(encoders.values())
        return _Placement(
            data_file=DATA_PATH["v2.1"].format(episode_chunk=chunk, episode_index=episode_index),
            data_location=(chunk, episode_index),
            encoders=encoders,
            video_files=videos,
            video_locations={name: (chunk, episode_index) for name in videos},
            from_timestamp=dict.fromkeys(videos, 0.0),
            close_after_episode=True,
        )

    def commit(self, placement: _Placement, table: pa.Table) -> None:
        for encoder in placement.encoders.values():
            encoder.close()
        self._open = []
        path = self.root / placement.data_file
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)

    def drop(self, placement: _Placement) -> None:
        for encoder in placement.encoders.values():
            encoder.close()
            encoder.path.unlink(missing_ok=True)
        self._open = []

    def close(self, pool: ThreadPoolExecutor) -> None:
        self.abort()

    def abort(self) -> None:
        for encoder in self._open:
            encoder.close()
        self._open = []


def _takes(sink: VideoSink, source: Path | None) -> bool:
    """Whether the episode's camera can go on in `sink`: encoded frames into an encoder's file,
    copied packets into a copy's file with the same stream headers."""
    if isinstance(sink, Mp4Encoder):
        return source is None
    return source is not None and sink.accepts(source)


def _open_sink(
    path: Path, camera: CameraSpec, source: Path | None, spec: DatasetSpec, video: VideoSettings
) -> VideoSink:
    if source is not None:
        return Mp4Remuxer(path, source, spec.fps)
    return Mp4Encoder(path, camera.width, camera.height, spec.fps, video)


def _close_sink(sink: VideoSink) -> None:
    sink.close()


def _copy_camera(
    remuxer: Mp4Remuxer, camera: CameraSpec, source: Path, length: int, close_after: bool
) -> PixelHistogram:
    """Copy one camera's episode packets and count the pixel values of its decoded frames."""
    histogram = PixelHistogram()
    packets, decoded = remuxer.append(source, histogram.add)
    if packets != length or decoded != length:
        raise EpisodeFramesError(
            "camera has another number of frames than the state",
            camera=camera.name,
            packets=packets,
            frames=decoded,
            expected=length,
        )
    if close_after:
        remuxer.close()
    return histogram


def _camera_job(
    sink: VideoSink,
    camera: CameraSpec,
    frames: CameraFrames,
    source: Path | None,
    length: int,
    close_after: bool,
) -> PixelHistogram:
    if isinstance(sink, Mp4Remuxer):
        assert source is not None
        return _copy_camera(sink, camera, source, length, close_after)
    return _encode_camera(sink, camera, frames.rgb, length, close_after)


def _encode_camera(
    encoder: Mp4Encoder,
    camera: CameraSpec,
    frames: Iterable[NDArray[np.uint8]],
    length: int,
    close_after: bool,
) -> PixelHistogram:
    """Encode one camera's episode frames and count their pixel values."""
    histogram = PixelHistogram()
    written = 0
    for frame in frames:
        if written == length:
            raise EpisodeFramesError(
                "camera has more frames than the state", camera=camera.name, expected=length
            )
        array = np.asarray(frame)
        if array.shape != (camera.height, camera.width, 3) or array.dtype != np.uint8:
            raise EpisodeFramesError(
                f"rgb frames must be ({camera.height}, {camera.width}, 3) uint8",
                camera=camera.name,
                frame=written,
                shape=array.shape,
                dtype=str(array.dtype),
            )
        histogram.add(array)
        encoder.encode(array)
        written += 1
    if written != length:
        raise EpisodeFramesError(
            "camera has fewer frames than the state",
            camera=camera.name,
            frames=written,
            expected=length,
        )
    if close_after:
        encoder.close()
    return histogram


class LeRobotDatasetWriter:
    """Writes one robot's dataset episode by episode; `finalize` commits the metadata.

    Files of a v3.0 dataset are closed and the next one started when they would pass
    `data_files_size_in_mb` / `video_files_size_in_mb`; an episode is never split across files.
    `root` must be absent or empty. `ground_truth_root` defaults to
    `<root's parent>/ground_truth/<root's name>`; it is only created if an episode carries
    depth, segmentation, intrinsics or poses.
    """

    def __init__(
        self,
        root: Path,
        spec: DatasetSpec,
        *,
        codebase: CodebaseVersion = "v3.0",
        video: VideoSettings | None = None,
        ground_truth_root: Path | None = None,
        chunks_size: int = 1000,
        data_files_size_in_mb: float = 100,
        video_files_size_in_mb: float = 200,
        workers: int | None = None,
        license_id: str = "other",
        provenance: Mapping[str, str] | None = None,
    ) -> None:
        if codebase not in ("v3.0", "v2.1"):
            raise DatasetWriterError("codebase must be v3.0 or v2.1", codebase=codebase)
        if root.exists() and any(root.iterdir()):
            raise AlreadyExists("dataset directory is not empty", path=str(root))
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.spec = spec
        self.codebase: CodebaseVersion = codebase
        self.video = video or VideoSettings()
        self.chunks_size = chunks_size
        self.data_files_size_in_mb = data_files_size_in_mb
        self.video_files_size_in_mb = video_files_size_in_mb
        self.license_id = license_id
        self.provenance = dict(provenance or {})
        self.ground_truth_root = ground_truth_root or root.parent / "ground_truth" / root.name
        self._ground_truth: GroundTruthPackWriter | None = None
        self._storage: _Storage = (
            _ConcatenatedStorage(
                root, spec, self.video, chunks_size, data_files_size_in_mb, video_files_size_in_mb
            )
            if codebase == "v3.0"
            else _PerEpisodeStorage(root, spec, self.video, chunks_size)
        )
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="lerobot-encode"
        )
        self._tasks: dict[str, int] = {}
        self._episodes: list[EpisodeRecord] = []
        # Per-episode metadata goes to disk as episodes are committed, and the numeric
        # features' values to a scratch folder outside the dataset: memory stays flat.
        self._episodes_file = (
            _EpisodesTable(self.root / EPISODES_PATH.format(chunk_index=0, file_index=0), spec)
            if codebase == "v3.0"
            else None
        )
        self._scratch = Path(tempfile.mkdtemp(prefix="bp-lerobot-stats-"))
        self._numeric = {
            key: NumericAccumulator(self._scratch, key)
            for key in (STATE, ACTION, *(f.key for f in spec.extra), *INDEX_COLUMNS)
        }
        self._histograms = {c.name: PixelHistogram() for c in spec.cameras}
        self._frames = 0
        self._finished = False

    def __enter__(self) -> LeRobotDatasetWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            if not self._finished:
                self.finalize()
        else:
            self.abort()

    def add_episode(self, episode: EpisodeFrames) -> EpisodeRecord:
        """Validate, encode and write one episode; raises EpisodeFramesError and skips it if bad."""
        if self._finished:
            raise DatasetWriterError("writer already finalized or aborted", path=str(self.root))
        checked = check_episode(self.spec, episode)
        index = len(self._episodes)
        task_index = self._tasks.get(episode.task, len(self._tasks))
        table = frame_table(
            self.spec,
            state=checked.state,
            action=checked.action,
            timestamps=checked.timestamps,
            episode_index=index,
            first_index=self._frames,
            task_index=task_index,
            extra=checked.extra,
        )
        sources = {c.name: self._copy_source(c, episode.cameras[c.name]) for c in self.spec.cameras}
        placement = self._storage.place(index, table, sources)
        jobs: list[Future[Any]] = [
            self._pool.submit(
                _camera_job,
                placement.encoders[c.name],
                c,
                episode.cameras[c.name],
                sources[c.name],
                checked.length,
                placement.close_after_episode,
            )
            for c in self.spec.cameras
        ]
        truth = self._ground_truth_for(episode)
        if truth is not None:
            jobs += [
                self._pool.submit(job)
                for job in truth.stream_jobs(index, checked.length, episode.cameras)
            ]
        numeric = self._numeric_columns(checked, index, task_index)
        stats: dict[str, FeatureStats] = {key: numeric_stats(v) for key, v in numeric.items()}
        failure = self._wait(jobs)
        if failure is not None:
            self._storage.drop(placement)
            if truth is not None:
                truth.discard_episode(index)
            if isinstance(failure, EpisodeFramesError):
                raise failure
            raise EpisodeFramesError(
                f"episode could not be encoded: {failure}",
                robot=self.spec.robot_type,
                episode=episode.source_id,
            ) from failure
        histograms: list[PixelHistogram] = [job.result() for job in jobs[: len(self.spec.cameras)]]
        for camera, histogram in zip(self.spec.cameras, histograms, strict=True):
            stats[camera.video_key] = histogram.stats()
            self._histograms[camera.name].merge(histogram)
        self._storage.commit(placement, table)
        if truth is not None:
            box_rows: list[BoxRows] = [
                r for r in (job.result() for job in jobs[len(self.spec.cameras) :]) if r
            ]
            truth.commit_episode(
                index,
                checked.length,
                episode.source_id,
                episode.cameras,
                episode.segmentation_labels,
                box_rows,
            )
        for key, values in numeric.items():
            self._numeric[key].add(values)
        self._tasks.setdefault(episode.task, task_index)
        record = EpisodeRecord(
            episode_index=index,
            length=checked.length,
            task_index=task_index,
            source_id=episode.source_id,
            data_file=placement.data_file,
            video_files={
                self.spec.camera(n).video_key: p for n, p in placement.video_files.items()
            },
            from_timestamp={
                self.spec.camera(n).video_key: t for n, t in placement.from_timestamp.items()
            },
        )
        ordered = {key: stats[key] for key in stats_feature_names(self.spec)}
        if self._episodes_file is not None:
            self._episodes_file.add(self._episode_row(record, placement, episode.task, ordered))
        else:
            meta = self.root / "meta"
            _append_jsonl(
                meta / "episodes.jsonl",
                {"episode_index": index, "tasks": [episode.task], "length": checked.length},
            )
            _append_jsonl(
                meta / "episodes_stats.jsonl",
                {"episode_index": index, "stats": stats_to_json(ordered)},
            )
        self._episodes.append(record)
        self._frames += checked.length
        return record

    def _copy_source(self, camera: CameraSpec, frames: CameraFrames) -> Path | None:
        """The camera's RGB file when its packets can be copied into the dataset's video."""
        source = frames.rgb_file
        if source is None or not copyable_rgb(
            source, camera.width, camera.height, self.spec.fps, self.video
        ):
            return None
        return source

    def _ground_truth_for(self, episode: EpisodeFrames) -> GroundTruthPackWriter | None:
        wanted = episode.segmentation_labels or any(
            c.has_ground_truth for c in episode.cameras.values()
        )
        if wanted and self._ground_truth is None:
            self._ground_truth = GroundTruthPackWriter(
                self.ground_truth_root, self.spec, self.chunks_size, self._scratch
            )
        return self._ground_truth if wanted else None

    def _numeric_columns(
        self, checked: CheckedEpisode, episode_index: int, task_index: int
    ) -> dict[str, NDArray[Any]]:
        n = checked.length
        return {
            STATE: checked.state,
            ACTION: checked.action,
            **checked.extra,
            "timestamp": checked.timestamps,
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, episode_index, dtype=np.int64),
            "index": np.arange(self._frames, self._frames + n, dtype=np.int64),
            "task_index": np.full(n, task_index, dtype=np.int64),
        }

    @staticmethod
    def _wait(jobs: list[Future[Any]]) -> BaseException | None:
        failure: BaseException | None = None
        for job in jobs:
            error = job.exception()
            if error is not None and failure is None:
                failure = error
        return failure

    def _episode_row(
        self,
        record: EpisodeRecord,
        placement: _Placement,
        task: str,
        stats: Mapping[str, FeatureStats],
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "episode_index": record.episode_index,
            "tasks": [task],
            "length": record.length,
            "data/chunk_index": placement.data_location[0],
            "data/file_index": placement.data_location[1],
            "dataset_from_index": self._frames,
            "dataset_to_index": self._frames + record.length,
        }
        for camera in self.spec.cameras:
            prefix = f"videos/{camera.video_key}"
            start = placement.from_timestamp[camera.name]
            row[f"{prefix}/chunk_index"] = placement.video_locations[camera.name][0]
            row[f"{prefix}/file_index"] = placement.video_locations[camera.name][1]
            row[f"{prefix}/from_timestamp"] = start
            row[f"{prefix}/to_timestamp"] = start + record.length / self.spec.fps
        row.update(flatten_episode_stats(stats))
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        return row

    def dataset_stats(self) -> dict[str, FeatureStats]:
        """Exact statistics over every frame written so far, in info.json feature order."""
        stats: dict[str, FeatureStats] = {key: acc.stats() for key, acc in self._numeric.items()}
        for camera in self.spec.cameras:
            stats[camera.video_key] = self._histograms[camera.name].stats()
        return {key: stats[key] for key in stats_feature_names(self.spec)}

    def finalize(self) -> DatasetSummary:
        """Close the files and write metadata, card, ground-truth index; info.json goes last."""
        if self._finished:
            raise DatasetWriterError("writer already finalized or aborted", path=str(self.root))
        self._finished = True
        self._storage.close(self._pool)
        self._pool.shutdown(wait=True)
        if self._episodes_file is not None:
            self._episodes_file.close()
        if not self._episodes:
            shutil.rmtree(self._scratch, ignore_errors=True)
            raise DatasetWriterError(
                "no episodes were written", path=str(self.root), robot=self.spec.robot_type
            )
        tasks = sorted(self._tasks, key=self._tasks.__getitem__)
        meta = self.root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        if self.codebase == "v3.0":
            pq.write_table(tasks_table(tasks), meta / "tasks.parquet")
        else:
            _write_jsonl(
                meta / "tasks.jsonl", [{"task_index": i, "task": t} for i, t in enumerate(tasks)]
            )
        try:
            summary = self._write_metadata(tasks, meta)
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)
        return summary

    def _write_metadata(self, tasks: list[str], meta: Path) -> DatasetSummary:
        """stats.json, the ground-truth index, the card and info.json, from the scratch folder."""
        dataset_stats = self.dataset_stats()
        (meta / "stats.json").write_text(json.dumps(stats_to_json(dataset_stats), indent=2) + "\n")
        info = info_json(
            self.spec,
            self.video,
            self.codebase,
            total_episodes=len(self._episodes),
            total_frames=self._frames,
            total_tasks=len(tasks),
            chunks_size=self.chunks_size,
            data_files_size_in_mb=self.data_files_size_in_mb,
            video_files_size_in_mb=self.video_files_size_in_mb,
            total_chunks=(len(self._episodes) - 1) // self.chunks_size + 1,
        )
        ground_truth = None
        if self._ground_truth is not None:
            self._ground_truth.finalize(self.root)
            ground_truth = self.ground_truth_root
        (self.root / "README.md").write_text(
            dataset_card(
                info,
                tasks,
                license_id=self.license_id,
                ground_truth_path=(
                    os.path.relpath(ground_truth, self.root) if ground_truth else None
                ),
                provenance=self.provenance,
            )
        )
        (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
        return DatasetSummary(
            root=self.root,
            codebase_version=self.codebase,
            total_episodes=len(self._episodes),
            total_frames=self._frames,
            tasks=tasks,
            episodes=list(self._episodes),
            ground_truth_root=ground_truth,
        )

    def abort(self) -> None:
        """Stop without committing: the directory has no info.json and is not a dataset."""
        if self._finished:
            return
        self._finished = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._storage.abort()
        if self._episodes_file is not None:
            self._episodes_file.abort()
        shutil.rmtree(self._scratch, ignore_errors=True)


class _EpisodesTable:
    """v3.0 meta/episodes: rows written a group at a time as episodes are committed.

    A row as Python values is about 26 KiB (its statistics are nested lists of floats); a
    group's rows are packed into Arrow record batches a few at a time (3 KiB a row), so
    a full group waiting to be written stays small. The group is written as one table, so the
    file is the one a table of the rows themselves would make.
    """

    GROUP = 256
    BATCH = 32

    def __init__(self, path: Path, spec: DatasetSpec) -> None:
        self.path = path
        self.schema = episodes_schema(spec)
        self._rows: list[dict[str, Any]] = []
        self._batches: list[pa.RecordBatch] = []
        self._count = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self._count += 1
        if len(self._rows) >= self.BATCH:
            self._pack()
        if self._count >= self.GROUP:
            self._flush()

    def _pack(self) -> None:
        if self._rows:
            self._batches.append(pa.RecordBatch.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def _flush(self) -> None:
        self._pack()
        if not self._batches:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, self.schema)
        self._writer.write_table(pa.Table.from_batches(self._batches, schema=self.schema))
        self._batches, self._count = [], 0

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        self._rows, self._batches, self._count = [], [], 0
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")


def write_lerobot_dataset(
    root: Path,
    spec: DatasetSpec,
    episodes: Iterable[EpisodeFrames],
    *,
    on_rejected: Callable[[EpisodeFrames, EpisodeFramesError], None] | None = None,
    **options: Any,
) -> DatasetSummary:
    """Write every episode (one at a time) and finalize; bad episodes go to `on_rejected`.

    Without `on_rejected` the first bad episode aborts the dataset (nothing is committed).
    """
    writer = LeRobotDatasetWriter(root, spec, **options)
    try:
        for episode in episodes:
            try:
                writer.add_episode(episode)
            except EpisodeFramesError as error:
                if on_rejected is None:
                    raise
                on_rejected(episode, error)
    except BaseException:
        writer.abort()
        raise
    return writer.finalize()


def remove_dataset(root: Path) -> None:
    """Delete a dataset directory (e.g. after a failed quality gate)."""
    shutil.rmtree(root, ignore_errors=True)
