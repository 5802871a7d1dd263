"""The export of one scene file: scene graph, asset index, task config and embeddings, as bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bp_scene_contract import read_scene_graph, read_task_config

from bp_export.assets.asset_index import (
    asset_index_json,
    block_noncommercial_for,
    build_asset_index,
    enforce_licence_policy,
)
from bp_export.embeddings.asset_embeddings import EmbeddingProvider, embed_assets, local_provider
from bp_export.scene.graph import build_scene_graph, scene_graph_json
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.tasks.genie_sim import genie_sim_tasks_json
from bp_export.tasks.language import annotate_instructions
from bp_export.tasks.planning import build_task_config, select_robots
from bp_export.usd.scene import load_scene
from bp_export.usd.stage import DEFAULT_MAX_OBJECTS, DEFAULT_MAX_SCENE_BYTES

MANIFEST_NAME = "export_manifest.json"
EXPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportResult:
    scene_id: str
    files: dict[str, bytes]
    objects: int
    tasks: int
    robots: list[str]
    warnings: list[str] = field(default_factory=list)
    licence_rejected: dict[str, str] = field(default_factory=dict)


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def export_scene(
    scene_path: Path,
    scene_id: str,
    *,
    environment: str,
    require_embeddings: bool,
    robots: Sequence[str] | None = None,
    provider: EmbeddingProvider | None = None,
    max_bytes: int = DEFAULT_MAX_SCENE_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> ExportResult:
    """Everything the export stage writes, from a scene file (and what lies beside it)."""
    scene = load_scene(scene_path, scene_id, max_bytes=max_bytes, max_objects=max_objects)
    reconciled = reconcile_scene(scene, scene_path)
    graph = build_scene_graph(scene, reconciled)
    index = build_asset_index(reconciled)
    licences = enforce_licence_policy(
        index, block_noncommercial=block_noncommercial_for(environment)
    )
    names = select_robots(reconciled.manifest.robots, robots)
    graph_text = scene_graph_json(graph)
    contract = read_scene_graph(graph_text)  # what downstream stages will read
    encoder = provider or local_provider()
    tasks = annotate_instructions(build_task_config(contract, names), contract, encoder).model_dump(
        mode="json"
    )
    embeddings = embed_assets(contract, encoder, require_embeddings=require_embeddings)
    files = {
        "scene_graph.json": graph_text.encode(),
        "asset_index.json": asset_index_json(index).encode(),
        "task_config.json": _json(tasks),
        "asset_embeddings.json": _json(embeddings),
        "scene_manifest.json": _json(reconciled.manifest.to_json()),
        # The same tasks in Genie Sim's own task-config format, for Genie Sim's own tools.
        "genie_sim_tasks.json": genie_sim_tasks_json(contract, read_task_config(_json(tasks))),
    }
    kept = {t for r in tasks["robots"] for t in r["tasks"]}
    return ExportResult(
        scene_id=scene_id,
        files=files,
        objects=len(graph.nodes),
        tasks=len(kept),
        robots=names,
        warnings=list(reconciled.warnings),
        licence_rejected=dict(licences.rejected),
    )


def export_manifest(
    result: ExportResult, *, source: dict[str, Any], pipeline_version: str
) -> bytes:
    """The commit record: sha256 and size of every output, written last."""
    return _json(
        {
            "format_version": EXPORT_FORMAT_VERSION,
            "scene_id": result.scene_id,
            "source": source,
            "pipeline_version": pipeline_version,
            "files": {
                name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                for name, data in sorted(result.files.items())
            },
            "summary": {"objects": result.objects, "tasks": result.tasks, "robots": result.robots},
            "warnings": result.warnings,
            "licence_rejected": result.licence_rejected,
        }
    )
