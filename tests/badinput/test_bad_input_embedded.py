"""The bad-input corpus (tests/badinput/corpus.py, whose docstring tables every case) through the
export stage's own delivery code on the embedded pipeline: each case's objects written into the
bucket, the scene file last, and its notification, forged where the case says, on the bus.

Every case ends with its typed error in the ledger and on its dead letter (or, for forged ids,
a dead letter alone; for a stale or irrelevant notification, the documented outcome), nothing
goes downstream, and a good scene dropped afterwards is published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bp_common import stages as stage_registry
from bp_common.bus.base import ATTR_ERROR, ATTR_ERROR_TYPE
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.config import Settings
from bp_common.ledger import RunRecord, StageState
from bp_common.runtime.delivery import Outcome
from bp_ops.embedded import LOCAL_BUCKET, EmbeddedPipeline, EmbeddedRun

from tests.badinput.corpus import SIZE_CAP, Case, build_corpus
from tests.badinput.drops import CASE_ATTRIBUTE, announce, put
from tests.concurrency.harness import ROBOT, TINY_ENV, write_tiny_scene

pytestmark = pytest.mark.timeout(900)


@dataclass(frozen=True)
class Ended:
    case: Case
    run_id: str
    record: RunRecord | None
    outcomes: list[str]
    dead_letters: list[dict[str, str]]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPipeline]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**TINY_ENV, "BP_EXPORT_MAX_SCENE_BYTES": str(SIZE_CAP)}.items():
            env.setenv(key, value)
        root = tmp_path_factory.mktemp("badinput")
        settings = Settings(_env_file=None, robots=ROBOT)  # type: ignore[call-arg]
        yield EmbeddedPipeline(root / "out", settings, stage_registry.available())


@pytest.fixture(scope="module")
def ended(pipeline: EmbeddedPipeline, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ended]:
    corpus = build_corpus(tmp_path_factory.mktemp("corpus"))
    results = {}
    for case in corpus:
        key, generation = put(pipeline.ports.blobs, case, case.files)
        envelope, run_id = announce(LOCAL_BUCKET, pipeline.ports.blobs, case, key, generation)
        if case.replay_after:  # the object is overwritten before its first notification arrives
            put(pipeline.ports.blobs, case, case.replay_after)
        pipeline.bus.publish(envelope)
        run = pipeline.drain(EmbeddedRun(case.scene_id, run_id))
        results[case.name] = Ended(
            case,
            run_id,
            pipeline.ports.ledger.get(run_id),
            [f"{stage}:{verdict.outcome.value}" for stage, verdict in run.deliveries],
            [],
        )
    with LocalDeadLetterQueue(pipeline.bus).claim("export", 1000) as letters:
        for letter in letters:
            results[letter.attributes[CASE_ATTRIBUTE]].dead_letters.append(letter.attributes)
    return results


def test_the_corpus_covers_the_issue_with_at_least_forty_cases(tmp_path: Path) -> None:
    names = {case.name for case in build_corpus(tmp_path)}
    assert len(names) >= 40
    for wanted in (
        "nan_translate", "zero_scale", "meters_per_unit_zero", "meters_per_unit_huge",
        "cyclic_sublayers", "missing_payload", "ten_thousand_objects", "reference_escapes_dotdot",
        "reference_absolute", "reference_url", "over_size_cap", "forged_generation_attribute",
        "replayed_old_generation", "manifest_not_json", "manifest_schema_no_objects",
        "garbage_usda", "garbage_usdc", "empty_scene_file", "unknown_robot",
    ):  # fmt: skip
        assert wanted in names


def test_each_bad_drop_ends_with_its_typed_error_in_the_ledger_and_on_a_dead_letter(
    ended: dict[str, Ended],
) -> None:
    wrong = []
    for name, end in ended.items():
        if not end.case.recorded or end.case.expect in ("skipped", "ignored"):
            continue
        export = end.record.stages.get("export") if end.record else None
        error = export.error if export else None
        if export is None or export.state is not StageState.FAILED or error is None:
            wrong.append(f"{name}: export {export and export.state}, deliveries {end.outcomes}")
            continue
        letters = [(a[ATTR_ERROR_TYPE], a[ATTR_ERROR]) for a in end.dead_letters]
        if (
            error.type != end.case.expect
            or not error.permanent
            or end.outcomes != ["export:dead_letter"]  # at once: never retried
            or [kind for kind, _ in letters] != [end.case.expect]
            or error.message not in letters[0][1]  # the dead letter says why
        ):
            wrong.append(f"{name}: {error.type} ({error.message}); letters {letters}")
    assert wrong == []


def test_forged_ids_are_dead_lettered_and_fail_no_run(ended: dict[str, Ended]) -> None:
    forged = [end for end in ended.values() if not end.case.recorded]
    assert len(forged) >= 5
    for end in forged:
        assert end.record is None, end.case.name  # not even the run the message names
        if end.case.expect == "ignored":
            assert end.dead_letters == [] and end.outcomes == ["export:ack"]
        else:
            assert [a[ATTR_ERROR_TYPE] for a in end.dead_letters] == [end.case.expect], end


def test_a_replayed_old_generation_is_skipped_as_superseded(ended: dict[str, Ended]) -> None:
    end = ended["replayed_old_generation"]
    assert end.record is not None and end.dead_letters == []
    export = end.record.stages["export"]
    assert export.state is StageState.SKIPPED and "superseded" in (export.note or "")


def test_nothing_bad_goes_downstream_and_a_following_good_scene_is_published(
    ended: dict[str, Ended], pipeline: EmbeddedPipeline, tmp_path: Path
) -> None:
    assert pipeline.bus.published("scenes-exported") == []
    assert not list(pipeline.ports.blobs.list("runs/"))  # not even an attempt's leftovers

    good = pipeline.drop_scene(write_tiny_scene(tmp_path / "good"), "good-after-bad")
    pipeline.drain(good)
    record = pipeline.ports.ledger.get(good.run_id)
    assert record is not None and record.state == "succeeded", record
    acked = {stage for stage, v in good.deliveries if v.outcome is Outcome.ACK}
    assert acked == {"export", "submit", "collect", "import", "upload"}
    published = pipeline.bus.published("datasets-published")
    assert [e.attributes["run_id"] for e in published] == [good.run_id]
