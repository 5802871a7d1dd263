"""Service runtime: stage definitions and the delivery rules every transport shares."""

from bp_common.runtime.delivery import Deliverer, Outcome, Verdict
from bp_common.runtime.stage import Ports, RunRef, Skip, Stage, StageContext, StageOutput, StageStop

__all__ = [
    "Deliverer",
    "Outcome",
    "Ports",
    "RunRef",
    "Skip",
    "Stage",
    "StageContext",
    "StageOutput",
    "StageStop",
    "Verdict",
]
