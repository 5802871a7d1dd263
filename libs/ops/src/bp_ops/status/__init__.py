"""The status page: runs, dead letters (with replay) and quality reports, for operators."""

from bp_ops.status.app import StatusSources, create_app

__all__ = ["StatusSources", "create_app"]
