"""Language annotations: which of a task's instructions each episode carries, and the counts.

Export writes several instructions per task into `task_config.json` (templates filled with
the objects' semantics, near-duplicates removed by MiniLM embedding similarity), and every
episode's manifest carries its task's list. LeRobot stores one task string per frame
(`task_index` into `meta/tasks`), and an episode lists the tasks its frames use, so the
instructions of a task are spread over its episodes: the k-th episode of a task, in seed
order, carries instruction k mod n. Every instruction of a task is then in the dataset's
tasks as soon as the task has n episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Instructed(Protocol):
    """What instructions are assigned by: a manifest, or what an assessment keeps of it."""

    @property
    def episode_id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def instructions(self) -> Sequence[str]: ...


def instructions_of(manifest: Instructed) -> list[str]:
    """The task's distinct non-empty instructions in order; the task id when there are none."""
    seen: list[str] = []
    for line in manifest.instructions:
        text = line.strip()
        if text and text not in seen:
            seen.append(text)
    return seen or [manifest.task_id]


def assign_instructions(manifests: Sequence[Instructed]) -> dict[str, str]:
    """episode_id -> the instruction it carries (module docstring)."""
    chosen: dict[str, str] = {}
    for task in sorted({m.task_id for m in manifests}):
        mine = sorted(
            (m for m in manifests if m.task_id == task), key=lambda m: (m.seed, m.episode_id)
        )
        for k, manifest in enumerate(mine):
            lines = instructions_of(manifest)
            chosen[manifest.episode_id] = lines[k % len(lines)]
    return chosen


def language_annotations(manifests: Sequence[Instructed], chosen: dict[str, str]) -> dict[str, Any]:
    """Per task: its instructions, how many, and how many dataset episodes carry each."""
    tasks: dict[str, Any] = {}
    for task in sorted({m.task_id for m in manifests}):
        mine = [m for m in manifests if m.task_id == task]
        lines = instructions_of(mine[0])
        tasks[task] = {
            "instructions": lines,
            "count": len(lines),
            "episodes_per_instruction": {
                line: sum(1 for m in mine if chosen.get(m.episode_id) == line) for line in lines
            },
        }
    return {
        "tasks": tasks,
        "instructions_total": sum(t["count"] for t in tasks.values()),
        "instructions_in_dataset": len(set(chosen.values())),
    }
