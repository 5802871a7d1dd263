"""An export as a later stage reads it: the files its committed manifest names, checked."""

from __future__ import annotations

from bp_common.blobstore import BlobStore
from bp_common.errors import InvalidInput
from bp_common.runtime.attempts import CommitMismatch, read_committed


class ExportMismatch(InvalidInput):
    """The export named by the event is missing or differs from its manifest."""


def read_export(
    blobs: BlobStore, manifest: str, manifest_sha256: str, prefix: str | None = None
) -> tuple[bytes, bytes]:
    """scene_graph.json and task_config.json, as the committed export manifest names them."""
    try:
        committed = read_committed(blobs, manifest)
        if committed is None:
            raise ExportMismatch("export manifest is missing", key=manifest)
        if committed.sha256 != manifest_sha256:
            raise ExportMismatch("export manifest differs from the event's sha256", key=manifest)
        if prefix is not None and committed.root != prefix:
            raise ExportMismatch(
                "the event's export prefix is not the committed attempt's",
                prefix=prefix,
                committed=committed.root,
            )
        return committed.read("scene_graph.json"), committed.read("task_config.json")
    except CommitMismatch as exc:
        raise ExportMismatch(exc.message, **exc.context) from exc
