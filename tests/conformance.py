"""The lerobot conformance check (../shared/tools/lerobot-conformance/check) run on a dataset.

The check is what counts for a dataset, so its absence fails the test that needs it, loudly,
rather than skipping it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CONFORMANCE_CHECK = (
    Path(__file__).resolve().parents[1].parent / "shared/tools/lerobot-conformance/check"
)


def check_dataset(root: Path) -> str:
    """Run the real lerobot 0.6.1 check on `root`; returns its report, fails unless VALID."""
    if not CONFORMANCE_CHECK.is_file():
        pytest.fail(
            f"the lerobot conformance check is missing at {CONFORMANCE_CHECK}: it comes with the "
            "shared tools beside the repository (../shared/tools/lerobot-conformance)"
        )
    done = subprocess.run(
        [str(CONFORMANCE_CHECK), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("VALID"), (
        f"{root}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    )
    return done.stdout
