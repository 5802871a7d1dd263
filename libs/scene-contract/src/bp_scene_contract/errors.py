"""The contract's one error: a scene document that breaks it, naming the scene and the field."""

from __future__ import annotations

from bp_common.errors import InvalidInput


class InvalidSceneDocument(InvalidInput):
    """A scene graph or task config that is malformed, of another version, or inconsistent."""


class Inconsistent(ValueError):
    """Raised inside validation when parts of a document contradict each other; `field` says
    where and `object` what, so that the reader can name them."""

    def __init__(self, message: str, field: str, object: str) -> None:
        super().__init__(message)
        self.field = field
        self.object = object
