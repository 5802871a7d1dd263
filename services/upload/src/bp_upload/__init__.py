"""BlueprintPipeline's upload service: verified, atomic publication to Firebase Storage."""

from bp_upload.options import UploadOptions, UploadSettings
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.publisher import (
    DatasetPublisher,
    DatasetSource,
    Publication,
    PublishRequest,
)
from bp_upload.publication.result import FileFailure, UploadResult

__all__ = [
    "DatasetLocation",
    "DatasetPublisher",
    "DatasetSource",
    "FileFailure",
    "Publication",
    "PublishRequest",
    "UploadOptions",
    "UploadResult",
    "UploadSettings",
]
