"""Where a published dataset lives in the Firebase bucket, and the guard that keeps runs apart.

    datasets/{scene_id}/{robot}/{run_id}/...                 the dataset's files
    datasets/{scene_id}/{robot}/{run_id}/dataset_manifest.json   written once every file verified
    datasets/{scene_id}/{robot}/LATEST                       written last: run id + manifest key

Every prefix ends with "/", so `datasets/scene_1/` never matches `datasets/scene_10/...`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bp_common.errors import InvalidName
from bp_common.ids import validate_object_name, validate_scene_id

from bp_upload.errors import OutsideRunPrefix

ROOT = "datasets"
MANIFEST_NAME = "dataset_manifest.json"
LATEST_NAME = "LATEST"


def _segment(value: str, what: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise InvalidName(f"{what} must be one path segment", **{what: repr(value)})
    validate_object_name(value)
    return value


@dataclass(frozen=True)
class DatasetLocation:
    """The keys of one robot's dataset from one run."""

    scene_id: str
    robot: str
    run_id: str

    def __post_init__(self) -> None:
        validate_scene_id(self.scene_id)
        _segment(self.robot, "robot")
        _segment(self.run_id, "run_id")

    @property
    def robot_prefix(self) -> str:
        return f"{ROOT}/{self.scene_id}/{self.robot}/"

    @property
    def prefix(self) -> str:
        """This run's prefix, with its trailing slash: the only place this run writes files."""
        return f"{self.robot_prefix}{self.run_id}/"

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    @property
    def latest_key(self) -> str:
        return self.robot_prefix + LATEST_NAME

    def file_key(self, relative: str) -> str:
        validate_object_name(relative)
        if relative == MANIFEST_NAME:
            raise InvalidName(
                f"a dataset file may not be named {MANIFEST_NAME}: the publication manifest is",
                file=relative,
            )
        return self.prefix + relative

    def owns(self, key: str) -> bool:
        """Whether key lies under this run's prefix (never a neighbour's: run_1 vs run_10)."""
        return key.startswith(self.prefix) and len(key) > len(self.prefix)

    def relative(self, key: str) -> str:
        if not self.owns(key):
            raise OutsideRunPrefix(
                "object is outside this run's prefix", key=key, prefix=self.prefix
            )
        return key[len(self.prefix) :]
