"""Convex decomposition of collision meshes with CoACD, cached on disk by content hash.

MuJoCo collides a mesh as its convex hull, so a bowl would be a solid lump. CoACD splits a
mesh into convex hulls that follow its concavities; each becomes one mesh geom. Decomposition
takes seconds, so the hulls are kept in a folder keyed by the sha256 of the vertices, the
triangles and the parameters: every later world with the same mesh loads them in milliseconds.
A mesh with more triangles than the budget allows is not decomposed but collides as its single
convex hull, with a logged note. When CoACD is missing or fails, the build fails with a typed
error rather than quietly putting a box in the mesh's place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from bp_common.errors import PermanentError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


class ConvexDecompositionError(PermanentError):
    """CoACD is not installed, or could not decompose a mesh: the world cannot be built."""


class ConvexSettings(BaseSettings):
    """Where decomposed hulls are kept and how much a decomposition may cost."""

    model_config = SettingsConfigDict(
        env_prefix="BP_CONVEX_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    cache_dir: Path = Field(default_factory=lambda: _user_cache() / "blueprint" / "convex")
    """Folder of decomposed hulls (default: $XDG_CACHE_HOME or ~/.cache, then blueprint/convex)."""
    threshold: float = Field(default=0.1, ge=0.01, le=1.0)
    """CoACD's concavity threshold: lower follows the shape closer and costs more."""
    max_hulls: int = Field(default=12, ge=1, le=64)
    """At most this many hulls per mesh."""
    max_triangles: int = Field(default=20_000, ge=1)
    """Meshes with more triangles collide as their convex hull instead of being decomposed."""


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base) if base else Path.home() / ".cache"


@dataclass(frozen=True)
class CoacdParameters:
    """The CoACD parameters a decomposition runs with; part of the cache key."""

    threshold: float
    max_convex_hull: int
    resolution: int = 1000
    preprocess_resolution: int = 30
    mcts_nodes: int = 10
    mcts_iterations: int = 60
    mcts_max_depth: int = 2
    seed: int = 0


@dataclass(frozen=True)
class Hull:
    """One convex piece, in the mesh's own frame."""

    vertices: np.ndarray
    faces: np.ndarray


@dataclass(frozen=True)
class Decomposition:
    hulls: tuple[Hull, ...]
    cache_hit: bool
    decomposed: bool
    """False when the mesh was over budget and stands as its own convex hull."""


class ConvexDecomposer:
    """Splits meshes into convex hulls, reading and filling the cache folder."""

    def __init__(self, settings: ConvexSettings | None = None) -> None:
        self.settings = settings or ConvexSettings()
        self.parameters = CoacdParameters(
            threshold=self.settings.threshold, max_convex_hull=self.settings.max_hulls
        )

    def key(self, vertices: np.ndarray, faces: np.ndarray) -> str:
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(vertices, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(faces, dtype="<i8").tobytes())
        parameters = {"format": CACHE_FORMAT, **asdict(self.parameters)}
        digest.update(json.dumps(parameters, sort_keys=True).encode())
        return digest.hexdigest()

    def decompose(self, vertices: np.ndarray, faces: np.ndarray, *, name: str) -> Decomposition:
        """The mesh's convex hulls; `name` says which mesh in notes and errors."""
        if len(faces) > self.settings.max_triangles:
            log.warning(
                "mesh %s has %d triangles, over the budget of %d (BP_CONVEX_MAX_TRIANGLES): "
                "it collides as its convex hull, not decomposed",
                name,
                len(faces),
                self.settings.max_triangles,
            )
            return Decomposition((Hull(vertices, faces),), cache_hit=False, decomposed=False)
        path = self.settings.cache_dir / f"{self.key(vertices, faces)}.npz"
        cached = _read(path)
        if cached is not None:
            return Decomposition(cached, cache_hit=True, decomposed=True)
        hulls = self._run_coacd(vertices, faces, name)
        try:
            _write(path, hulls)
        except OSError as exc:
            # The hulls are good; only the next world pays for them again.
            log.warning("could not keep the hulls of %s in %s: %s", name, path.parent, exc)
        return Decomposition(hulls, cache_hit=False, decomposed=True)

    def _run_coacd(self, vertices: np.ndarray, faces: np.ndarray, name: str) -> tuple[Hull, ...]:
        try:
            import coacd
        except ImportError as exc:
            raise ConvexDecompositionError(
                "coacd is not installed: collision meshes cannot be decomposed "
                "(install the collector with its dependencies)",
                mesh=name,
            ) from exc
        coacd.set_log_level("error")
        try:
            parts = coacd.run_coacd(
                coacd.Mesh(np.asarray(vertices, dtype=float), np.asarray(faces, dtype=np.int64)),
                **asdict(self.parameters),
            )
        except Exception as exc:  # CoACD raises plain RuntimeErrors from its C++ core.
            raise ConvexDecompositionError(
                f"coacd could not decompose the mesh: {exc}", mesh=name
            ) from exc
        hulls = tuple(
            Hull(np.asarray(v, dtype=float), np.asarray(f, dtype=np.int64))
            for v, f in parts
            if len(v) >= 4
        )
        if not hulls:
            raise ConvexDecompositionError("coacd returned no hull with volume", mesh=name)
        return hulls


def _read(path: Path) -> tuple[Hull, ...] | None:
    try:
        with np.load(path) as stored:
            count = int(stored["count"])
            return tuple(Hull(stored[f"v{i}"], stored[f"f{i}"]) for i in range(count))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        # A damaged entry is decomposed again and overwritten.
        log.warning("convex cache entry %s is unreadable (%s): decomposing again", path, exc)
        return None


def _write(path: Path, hulls: tuple[Hull, ...]) -> None:
    """Write whole or not at all: workers may decompose the same mesh at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"count": np.array(len(hulls))}
    for i, hull in enumerate(hulls):
        arrays[f"v{i}"] = hull.vertices
        arrays[f"f{i}"] = hull.faces
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
