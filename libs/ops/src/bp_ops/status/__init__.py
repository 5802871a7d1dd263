"""The status page: runs, charts, dead letters (replay, purge) and quality reports, guarded."""

from bp_ops.status.app import StatusSources, create_app
from bp_ops.status.guard import Guard, new_token

__all__ = ["Guard", "StatusSources", "create_app", "new_token"]
