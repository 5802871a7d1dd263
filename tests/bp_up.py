"""`bp up` started as a user starts it, in its own process, for the tests that need the whole
local stack: it returns once the stack says it is up, with what it printed and its stack.env."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Started:
    process: subprocess.Popen[str]
    printed: list[str]
    """What `bp up` printed until the stack was up."""
    env: dict[str, str]
    """The stack's client environment, from the stack.env it wrote."""


def start_bp_up(root: Path, env: dict[str, str], *options: str) -> Started:
    """`bp up --out ROOT [options]` with `env` added to this process's environment, minus any
    emulator addresses (the stack starts its own)."""
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bp_common.cli", "up", *options, "--out", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment | env,
    )
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if "stack is up" in line:
            break
    assert "stack is up" in "".join(printed), "".join(printed)
    stack_env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (root / "stack.env").read_text().splitlines()
    )
    return Started(process, printed, stack_env)
