"""What the status page charts, read from the run ledger and the dead-letter queues.

Throughput is stage runs finished per hour, latency the stages' own durations and the runs'
time from first record to published, backlog the runs waiting for a stage (the stage before
succeeded, this one has not started) or in it, dead letters those waiting now and when they
arrived. Everything comes from the most recently updated runs the ledger returns, so the
numbers cover that window and say so. Charts are SVG drawn on the server: no script, no CDN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from bp_common.ledger import RunRecord, StageRecord, StageState
from bp_common.topology import STAGE_NAMES

from bp_ops.status.overview import DeadLetterDepth

FINISHED = frozenset(
    {StageState.SUCCEEDED, StageState.FAILED, StageState.SKIPPED, StageState.QUALITY_FAILED}
)
FAILED = frozenset({StageState.FAILED, StageState.QUALITY_FAILED})
IN_FLIGHT = frozenset({StageState.RUNNING, StageState.RETRYING})
STAGE_COLOURS = {
    "export": "#1f5fbf",
    "submit": "#7b3fb5",
    "collect": "#a8326e",
    "import": "#0f7a5a",
    "upload": "#b5651d",
}


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class StageLoad:
    stage: str
    finished: list[int]
    """Stage runs finished in each hour of the window, oldest first."""
    failed: list[int]
    p50_s: float | None
    p95_s: float | None
    waiting: int | None
    """Runs whose previous stage succeeded and that this stage has not started (unknown for the
    first stage, whose queue the ledger never sees)."""
    in_flight: int
    dead_letters: int | None
    dead_letters_capped: bool = False


@dataclass(frozen=True)
class Overview:
    now: datetime
    hours: int
    runs: int
    stages: list[StageLoad]
    published: int
    run_p50_s: float | None
    run_p95_s: float | None
    dead_letters_per_hour: list[int]

    def document(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "window_hours": self.hours,
            "runs_considered": self.runs,
            "stages": [vars(s) for s in self.stages],
            "runs_published": self.published,
            "run_duration_p50_s": self.run_p50_s,
            "run_duration_p95_s": self.run_p95_s,
            "dead_letters_per_hour": self.dead_letters_per_hour,
        }


def _hour_index(when: datetime | None, start: datetime, hours: int) -> int | None:
    if when is None or when < start:
        return None
    index = int((when - start) / timedelta(hours=1))
    return index if index < hours else None


def _handed_on(record: StageRecord | None) -> bool:
    """The stage succeeded and emitted the event the next stage consumes."""
    return (
        record is not None and record.state is StageState.SUCCEEDED and record.emitted is not None
    )


def overview(
    runs: Sequence[RunRecord],
    depths: Sequence[DeadLetterDepth],
    now: datetime,
    hours: int = 24,
) -> Overview:
    start = now - timedelta(hours=hours)
    depth_of = {d.stage: d for d in depths}
    loads = []
    for position, stage in enumerate(STAGE_NAMES):
        finished, failed = [0] * hours, [0] * hours
        durations: list[float] = []
        waiting: int | None = None if position == 0 else 0
        in_flight = 0
        for run in runs:
            record = run.stages.get(stage)
            if record is None:
                before = run.stages.get(STAGE_NAMES[position - 1]) if position else None
                if waiting is not None and _handed_on(before):
                    waiting += 1
                continue
            if record.state in IN_FLIGHT:
                in_flight += 1
            slot = _hour_index(record.finished_at, start, hours)
            if record.state in FINISHED and slot is not None:
                finished[slot] += 1
                if record.state in FAILED:
                    failed[slot] += 1
                if record.duration_s is not None:
                    durations.append(record.duration_s)
        depth = depth_of.get(stage)
        loads.append(
            StageLoad(
                stage=stage,
                finished=finished,
                failed=failed,
                p50_s=percentile(durations, 0.5),
                p95_s=percentile(durations, 0.95),
                waiting=waiting,
                in_flight=in_flight,
                dead_letters=depth.waiting if depth else None,
                dead_letters_capped=depth.capped if depth else False,
            )
        )
    run_seconds = []
    last = STAGE_NAMES[-1]
    for run in runs:
        record = run.stages.get(last)
        if record is None or record.state is not StageState.SUCCEEDED:
            continue
        if _hour_index(record.finished_at, start, hours) is not None and record.finished_at:
            run_seconds.append((record.finished_at - run.created_at).total_seconds())
    arrivals = [0] * hours
    for depth in depths:
        for letter in depth.letters:
            slot = _hour_index(letter.publish_time, start, hours)
            if slot is not None:
                arrivals[slot] += 1
    return Overview(
        now=now,
        hours=hours,
        runs=len(runs),
        stages=loads,
        published=len(run_seconds),
        run_p50_s=percentile(run_seconds, 0.5),
        run_p95_s=percentile(run_seconds, 0.95),
        dead_letters_per_hour=arrivals,
    )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def column_chart(
    chart_id: str,
    title: str,
    series: Sequence[tuple[str, str, Sequence[float]]],
    labels: Sequence[str],
    *,
    unit: str = "",
    width: int = 560,
    height: int = 150,
) -> str:
    """Stacked columns, one per label; each series is (name, colour, values). Hover for values."""
    count = max(len(labels), 1)
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = max([*totals, 1.0])
    left, plot_h = 34, height - 30
    step = (width - left - 4) / count
    shapes = [
        f'<line x1="{left}" y1="{plot_h + 4}" x2="{width - 2}" y2="{plot_h + 4}" class="axis"/>',
        f'<text x="{left - 4}" y="12" class="tick" text-anchor="end">{_e(_number(top))}</text>',
        f'<text x="{left - 4}" y="{plot_h + 4}" class="tick" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        base = plot_h + 4.0
        for name, colour, values in series:
            value = values[i]
            if value <= 0:
                continue
            h = value / top * (plot_h - 6)
            base -= h
            shapes.append(
                f'<rect x="{left + i * step + 1:.1f}" y="{base:.1f}" width="{max(step - 2, 1):.1f}"'
                f' height="{h:.1f}" fill="{colour}"><title>{_e(label)}: {_e(_number(value))}'
                f"{_e(unit)} {_e(name)}</title></rect>"
            )
        if len(labels) <= 8 or i % max(1, len(labels) // 6) == 0:
            shapes.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 2}" class="tick"'
                f' text-anchor="middle">{_e(label)}</text>'
            )
    legend = " ".join(
        f"<span class='key'><i style='background:{colour}'></i>{_e(name)}</span>"
        for name, colour, _ in series
    )
    return (
        f"<figure class='chart' id='{_e(chart_id)}'><figcaption>{_e(title)} {legend}"
        f"</figcaption><svg viewBox='0 0 {width} {height}' width='{width}' height='{height}'"
        f" role='img' aria-label='{_e(title)}'>{''.join(shapes)}</svg></figure>"
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def hour_labels(now: datetime, hours: int) -> list[str]:
    start = now - timedelta(hours=hours)
    return [f"{(start + timedelta(hours=i)):%H}h" for i in range(hours)]
