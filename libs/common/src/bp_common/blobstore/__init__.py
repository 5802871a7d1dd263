"""Blob store port: streaming reads and writes, create-only commit markers, listings."""

from bp_common.blobstore.base import BlobInfo, BlobStore

__all__ = ["BlobInfo", "BlobStore"]
