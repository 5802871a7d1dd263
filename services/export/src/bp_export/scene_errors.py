"""Typed, permanent errors raised while reading a scene, its manifest and its asset licences.

Every error carries the scene id and, where one exists, the object (prim path or manifest id)
and the field at fault, so an operator can fix the input without reading a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bp_common.errors import InvalidInput, InvalidMessage


class UnsupportedSceneFormat(InvalidInput):
    """The scene file's extension is not one of .usda, .usd, .usdc or .usdz."""


class SceneTooLarge(InvalidInput):
    """The scene file is bigger than the configured maximum."""


class TooManyObjects(InvalidInput):
    """The scene holds more physical objects than the configured maximum."""


class SceneUnparsable(InvalidInput):
    """usd-core could not read the scene file (bad syntax, not a USD file, truncated package)."""


class UnresolvedAsset(InvalidInput):
    """A sublayer, reference, payload (or, inside a .usdz, a texture) cannot be resolved offline."""

    def __init__(self, message: str, *, assets: Sequence[str], **context: Any) -> None:
        self.assets = sorted(set(assets))
        super().__init__(message, asset=", ".join(self.assets), **context)


class AssetOutsideScene(UnresolvedAsset):
    """A sublayer, reference or payload that points outside the scene's own folder: `..` past
    the folder, an absolute path, or a URL. Nothing outside the drop is ever read."""


class CompositionFailed(InvalidInput):
    """USD reported composition errors that are not a missing asset (e.g. a bad prim target)."""


class MissingDefaultPrim(InvalidInput):
    """The stage names a default prim that does not exist, or one is required and absent."""


class InvalidStageMetadata(InvalidInput):
    """upAxis, metersPerUnit or kilogramsPerUnit has a value the pipeline cannot interpret."""


class NonFiniteValue(InvalidInput):
    """A transform, extent, point, mass or limit is NaN or infinite."""


class ZeroSizeObject(InvalidInput):
    """An object has no geometry, or geometry that collapses to a point or a line."""


class InvalidPhysics(InvalidInput):
    """Physics properties that no simulator accepts: negative mass, negative friction."""


class InvalidJoint(InvalidInput):
    """A joint with inverted limits, an unknown axis or bodies that are not in the scene."""


class EmptyScene(InvalidInput):
    """The scene holds no physical object at all."""


class ManifestInvalid(InvalidInput):
    """scene_manifest.json is not JSON or does not match the manifest schema."""


class ManifestMismatch(InvalidInput):
    """The manifest and the USD disagree: objects missing on either side, or frame and units."""

    def __init__(
        self,
        message: str,
        *,
        missing_in_usd: Sequence[str] = (),
        missing_in_manifest: Sequence[str] = (),
        **context: Any,
    ) -> None:
        self.missing_in_usd = sorted(missing_in_usd)
        self.missing_in_manifest = sorted(missing_in_manifest)
        if self.missing_in_usd:
            context.setdefault("missing_in_usd", ", ".join(self.missing_in_usd))
        if self.missing_in_manifest:
            context.setdefault("missing_in_manifest", ", ".join(self.missing_in_manifest))
        super().__init__(message, **context)


class LicenceRejected(InvalidInput):
    """Assets whose licence does not allow commercial use, refused where that is enforced."""

    def __init__(self, message: str, *, offending: Sequence[str], **context: Any) -> None:
        self.offending = sorted(offending)
        super().__init__(message, object=", ".join(self.offending), **context)


class NotificationMismatch(InvalidMessage):
    """A `scene-uploads` notification that does not describe the object in the bucket: another
    bucket than the one this stage reads, a generation the object never had, another size."""
