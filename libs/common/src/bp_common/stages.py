"""Finds the stages that are installed: each service registers its Stage as an entry point."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from bp_common.errors import NotFound
from bp_common.runtime.stage import Stage
from bp_common.topology import STAGE_NAMES

ENTRY_POINT_GROUP = "blueprint.stages"


def available() -> dict[str, Stage[Any, Any]]:
    """Stage name -> Stage, in pipeline order, for every service that ships its stage."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {name: _check(found[name].load(), name) for name in STAGE_NAMES if name in found}


def missing() -> list[str]:
    have = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return [name for name in STAGE_NAMES if name not in have]


def load(spec: str) -> Stage[Any, Any]:
    """A stage by name (`export`) or by import path (`package.module:ATTRIBUTE`)."""
    if ":" in spec:
        module, _, attr = spec.partition(":")
        return _check(getattr(importlib.import_module(module), attr), spec)
    stages = available()
    if spec not in stages:
        raise NotFound("stage is not installed (its service does not ship it yet)", stage=spec)
    return stages[spec]


def _check(obj: object, spec: str) -> Stage[Any, Any]:
    if not isinstance(obj, Stage):
        raise NotFound("entry point is not a Stage", stage=spec)
    return obj
