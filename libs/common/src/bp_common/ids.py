"""Identifiers: validated scene ids and run ids derived from the triggering object generation."""

from __future__ import annotations

import hashlib
import re

from bp_common.errors import InvalidName

_SCENE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9._/-]{1,1024}$")
SCENE_FILE_NAMES = ("scene.usda", "scene.usd", "scene.usdc", "scene.usdz")


def validate_scene_id(scene_id: str) -> str:
    """A scene id is a lowercase slug: safe as a path segment, a Firestore key and a label."""
    if not _SCENE_ID.fullmatch(scene_id):
        raise InvalidName(
            "scene id must be 1-63 characters of a-z, 0-9, '_' or '-', starting alphanumeric",
            scene_id=repr(scene_id),
        )
    return scene_id


def validate_object_name(name: str) -> str:
    """An object key inside a bucket: no traversal, no empty or dot segments, plain characters."""
    if not _OBJECT_NAME.fullmatch(name) or name.startswith("/"):
        raise InvalidName("object name has characters outside [A-Za-z0-9._/-]", name=repr(name))
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidName("object name has an empty, '.' or '..' segment", name=repr(name))
    return name


def scene_id_from_object(name: str) -> str:
    """`scenes/{scene_id}/scene.usd[a|c|z]` -> scene_id; anything else is not a scene upload."""
    validate_object_name(name)
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "scenes" or parts[2] not in SCENE_FILE_NAMES:
        raise InvalidName(
            "not a scene upload: expected scenes/{scene_id}/scene.usd[a|c|z]", name=repr(name)
        )
    return validate_scene_id(parts[1])


def run_id_for(bucket: str, name: str, generation: int | str) -> str:
    """The run id of one object generation: a redelivered or repeated notification maps to it."""
    digest = hashlib.sha256(f"{bucket}/{name}#{generation}".encode()).hexdigest()
    return f"run-{digest[:20]}"
