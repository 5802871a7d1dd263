"""How much one process takes on: work slots from the stage's footprint and the machine, the
messages it admits, how long a delivery may work, and how long a duplicate waits.

- **Work slots** (`BP_WORK_SLOTS`): deliveries that run the stage's handler at once. By default
  as many as the machine holds, by cores and by memory, for the stage's footprint (what one
  delivery needs), and at least one.
- **Admission** (`BP_FLOW_CONTROL_MAX_MESSAGES`): messages the process takes at once, working or
  waiting as a duplicate of a delivery that holds the lease, four per slot by default. It is the
  pull worker's flow control, the push app's admission, and Cloud Run's request concurrency.
- **Work deadline** (`BP_WORK_DEADLINE_S`): a handler holds its lease at most this long (by
  default the push request's ack deadline, which Cloud Run's request timeout equals, or the
  stage's own deadline within the pull worker's maximum lease); past it the lease is left to
  lapse, so a hung handler cannot hold its unit for ever. Where nothing cuts a push request
  short (`bp up`), it is set longer than the ack deadline: a redelivered push then waits for the
  holder instead of working beside it.
- **Wait budget**: how long a duplicate waits for the holder before it hands the message back
  without using a delivery attempt (push: up to the ack deadline, less a margin).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bp_common.config import Settings

# A push request must be answered before the subscription's ack deadline, or Pub/Sub redelivers
# it (and counts an attempt): waiting and handing back take this long at most.
PUSH_MARGIN_S = 15.0
# The streaming-pull client extends a message's lease for at most this long.
PULL_MAX_LEASE_S = 3600.0
ADMISSION_PER_SLOT = 4
MAX_DEFAULT_SLOTS = 32
# Keep a quarter of the memory for the runtime, the client libraries and the page cache.
MEMORY_SHARE = 0.75


class Transport(StrEnum):
    PUSH = "push"
    PULL = "pull"
    LOCAL = "local"


@dataclass(frozen=True)
class Footprint:
    """What one delivery of a stage needs: cores it keeps busy and memory at its peak."""

    cpus: float = 1.0
    memory_mb: int = 1024


@dataclass(frozen=True)
class Machine:
    cpus: float
    memory_mb: int


def _cgroup_cpus() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _cgroup_memory_mb() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return None if limit == "max" else int(limit) // (1024 * 1024)


def this_machine() -> Machine:
    """Cores and memory this process may use: the container's limits (Cloud Run sets them as
    cgroup limits), else the host's."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    cgroup_cpus = _cgroup_cpus()
    if cgroup_cpus is not None:
        cpus = min(cpus, cgroup_cpus)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    cgroup_memory = _cgroup_memory_mb()
    if cgroup_memory is not None:
        memory = min(memory, cgroup_memory)
    return Machine(cpus=cpus, memory_mb=int(memory))


def work_slots_for(footprint: Footprint, machine: Machine) -> int:
    """As many deliveries as the cores and the memory hold, at least one."""
    by_cpu = math.floor(machine.cpus / footprint.cpus) if footprint.cpus > 0 else MAX_DEFAULT_SLOTS
    by_memory = math.floor(machine.memory_mb * MEMORY_SHARE / max(1, footprint.memory_mb))
    return max(1, min(by_cpu, by_memory, MAX_DEFAULT_SLOTS))


@dataclass(frozen=True)
class DeliveryLimits:
    work_slots: int
    admission: int
    work_deadline_s: float
    wait_budget_s: float
    lease_ttl_s: float
    max_deferrals: int

    @property
    def poll_s(self) -> float:
        """How often a waiting duplicate looks at the ledger: a few times per lease period."""
        return max(0.2, min(2.0, self.lease_ttl_s / 5))


def delivery_limits(
    settings: Settings,
    footprint: Footprint,
    transport: Transport,
    *,
    stage_deadline_s: float | None = None,
    machine: Machine | None = None,
) -> DeliveryLimits:
    slots = settings.work_slots or work_slots_for(footprint, machine or this_machine())
    admission = settings.flow_control_max_messages or ADMISSION_PER_SLOT * slots
    push_budget = max(5.0, settings.ack_deadline_s - PUSH_MARGIN_S)
    if transport is Transport.PUSH:
        deadline = min(stage_deadline_s or settings.ack_deadline_s, settings.ack_deadline_s)
        wait = push_budget
    elif transport is Transport.PULL:
        deadline = min(stage_deadline_s or PULL_MAX_LEASE_S, PULL_MAX_LEASE_S)
        wait = deadline
    else:
        deadline = stage_deadline_s or PULL_MAX_LEASE_S
        wait = push_budget
    return DeliveryLimits(
        work_slots=slots,
        admission=max(admission, slots),
        work_deadline_s=settings.work_deadline_s or deadline,
        wait_budget_s=settings.wait_budget_s or wait,
        lease_ttl_s=settings.lease_ttl_s,
        max_deferrals=settings.max_deferrals,
    )
