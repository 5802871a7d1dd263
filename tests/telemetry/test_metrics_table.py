"""docs/observability.md's table of metrics is the code's: every row, unit and label set."""

from __future__ import annotations

from pathlib import Path

from bp_common.metrics import CATALOGUE

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def rows() -> dict[str, list[str]]:
    found = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`bp."):
            found[cells[0].strip("`")] = cells
    return found


def test_the_documented_table_lists_every_metric_with_its_kind_unit_and_labels() -> None:
    table = rows()
    assert list(table) == [spec.name for spec in CATALOGUE]
    for spec in CATALOGUE:
        _, kind, unit, labels, emitted_by, meaning = table[spec.name]
        assert kind == spec.kind and unit == f"`{spec.unit}`", spec.name
        documented = [] if labels == "-" else [x.strip().strip("`") for x in labels.split(",")]
        assert documented == list(spec.labels), spec.name
        assert emitted_by == spec.emitted_by and meaning == spec.description, spec.name
