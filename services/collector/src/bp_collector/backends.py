"""The registry of backends: each name `BP_COLLECTOR_BACKEND` may take, and how to make it.

A factory imports its simulator only when called, so that choosing one backend never loads
another, and the service can check a name without loading any.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bp_common.errors import PermanentError

from bp_collector.backend import Backend

DEFAULT_BACKEND = "mujoco"


def _mujoco() -> Backend:
    from bp_collector.mujoco.backend import MujocoBackend

    return MujocoBackend()


def _genie_sim() -> Backend:
    from bp_common.config import Settings

    from bp_collector.genie_sim.backend import GenieSimBackend
    from bp_collector.genie_sim.client import check_address
    from bp_collector.settings import CollectorSettings

    settings, own = Settings(), CollectorSettings()
    return GenieSimBackend(
        check_address(own.genie_sim_address, settings.env.value),
        own.genie_sim_scene_dir or settings.data_dir / "genie-sim" / "scenes",
    )


BACKENDS: Mapping[str, Callable[[], Backend]] = {"mujoco": _mujoco, "genie-sim": _genie_sim}

SIMULATION_PROCESSES: Mapping[str, int] = {"genie-sim": 1}
"""Backends that take a fixed number of simulation processes: a Genie Sim server plays one
scene at a time, so one process drives it (more servers, more collectors)."""


class UnknownBackend(PermanentError):
    """A backend name the registry does not hold."""


def check_backend_name(name: str) -> str:
    """`name` if the registry holds it; else `UnknownBackend` listing the known ones."""
    if name not in BACKENDS:
        raise UnknownBackend(
            f"unknown collector backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}"
        )
    return name


def create_backend(name: str) -> Backend:
    return BACKENDS[check_backend_name(name)]()
