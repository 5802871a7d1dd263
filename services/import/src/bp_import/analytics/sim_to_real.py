"""Sim-to-real notes: the randomisation the episodes used beside the real variation it stands
for, and what the simulator leaves out.

The simulated side is measured from the episodes (the range each factor of the draw took, see
`coverage`); the real side is a fixed reference table, written down here and in
docs/quality-metrics.md, of the ranges real scenes and sensors show. A factor the episodes do
not vary is reported as such, never as covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RealRange:
    """One kind of variation: which draw factors simulate it and what reality spans."""

    name: str
    factors: str
    """Prefix and suffix of the coverage factor names that simulate it, as `prefix*suffix`."""
    unit: str
    real: str
    basis: str

    def matches(self, factor: str) -> bool:
        prefix, _, suffix = self.factors.partition("*")
        return factor.startswith(prefix) and factor.endswith(suffix)


REAL_RANGES: tuple[RealRange, ...] = (
    RealRange(
        "object position",
        "object.*.dx",
        "m",
        "a few cm around a marked spot when a person resets the scene; anywhere on the "
        "support when nobody marks it",
        "tabletop resets by hand; the x offset stands for both horizontal axes",
    ),
    RealRange(
        "object yaw",
        "object.*.dyaw",
        "rad",
        "any heading, -pi..pi, for objects put down by hand",
        "nothing constrains the heading of a mug or a box on a table",
    ),
    RealRange(
        "object size",
        "object.*.scale",
        "ratio",
        "about 0.8..1.25 between instances of one household category (mugs of 8 to 12 cm)",
        "product ranges of one category; the scene's asset is one instance",
    ),
    RealRange(
        "light intensity",
        "light.intensity",
        "relative",
        "about 50..500 lx indoors, a factor of 10 (500 lx is EN 12464-1's office task light, "
        "homes are often 50..300 lx)",
        "the simulator's intensity is relative, so compare ratios: max / min of the draw",
    ),
    RealRange(
        "light direction",
        "light.elevation_rad",
        "rad",
        "overhead fittings (elevation near pi/2) to low window light (elevation 0.2..0.5)",
        "rooms lit from ceilings and windows",
    ),
    RealRange(
        "colour",
        "colour.*",
        "ratio",
        "white balance from 2700 K to 6500 K lamps shifts red against blue by roughly +-30 %",
        "warm white to daylight lamps; surface colours of one category vary further",
    ),
    RealRange(
        "camera placement",
        "camera.*.position.x",
        "m",
        "a few mm and under 1 degree after hand-eye calibration; cm when a mount is bumped",
        "calibrated fixed and wrist cameras",
    ),
)

NOT_MODELLED: tuple[str, ...] = (
    "camera noise, exposure, motion blur and rolling shutter: images are rendered noise-free",
    "depth-sensor artefacts: missing depth on dark, shiny or transparent surfaces, edge noise",
    "actuator dynamics: joint position servos are ideal within their force limits, with no "
    "backlash, latency, friction in the gears or calibration offsets",
    "deformable objects, cables, liquids and articulated objects beyond one hinge or slide",
    "object mass, friction and scale variation: authored values, not randomised",
    "transparency and specular reflections in rendering; contact on exact meshes where the "
    "scene gives only boxes",
    "people and other moving things in the scene, and control-loop timing jitter",
)


def sim_to_real_notes(factors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For each real range: the factors that simulate it, their span in the episodes."""
    rows = []
    for real in REAL_RANGES:
        used = {name: f for name, f in factors.items() if real.matches(name)}
        spans = [f["max"] - f["min"] for f in used.values()]
        simulated: dict[str, Any]
        if not used:
            simulated = {"varied": False, "note": "not randomised in these episodes"}
        else:
            simulated = {
                "varied": max(spans) > 0,
                "factors": len(used),
                "min": round(min(f["min"] for f in used.values()), 6),
                "max": round(max(f["max"] for f in used.values()), 6),
            }
            if real.name == "light intensity" and simulated["min"] > 0:
                simulated["max_over_min"] = round(simulated["max"] / simulated["min"], 4)
        rows.append(
            {
                "variation": real.name,
                "unit": real.unit,
                "simulated": simulated,
                "real": real.real,
                "basis": real.basis,
            }
        )
    return {"ranges": rows, "not_modelled": list(NOT_MODELLED)}
