"""Run ledger port: where every run is, per stage, in a schema-versioned document."""

from bp_common.ledger.model import RunRecord, StageError, StageRecord, StageState
from bp_common.ledger.service import LedgerStore, RunLedger, StageAlreadyCommitted

__all__ = [
    "LedgerStore",
    "RunLedger",
    "RunRecord",
    "StageAlreadyCommitted",
    "StageError",
    "StageRecord",
    "StageState",
]
