"""Every metric the Terraform's dashboards, alert policies and SLOs read, and a check of those
references against what a real run emitted.

Each query (a chart's time-series filter, a ratio's numerator or denominator, an alert
condition, an SLO's SLI) is read from the HCL as written, with the labels it groups or filters
by. A reference is one of three kinds: our own metric (`${local.otel}/NAME`), which the run must
have emitted with those labels and literal label values; a log-based metric defined in the same
module, whose labels must be ones it extracts; or a metric Google's own services write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TERRAFORM = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
# Metrics that Google's services write about our resources, not our code.
GOOGLE_PREFIXES = ("pubsub.googleapis.com/", "run.googleapis.com/")
QUERY_BLOCKS = re.compile(
    r"\b(timeSeriesFilter|numerator|denominator|condition_threshold|distribution_cut"
    r"|good_total_ratio)\s*=?\s*\{"
)
_METRIC_TYPE = re.compile(r'metric\.type\s*=\s*\\"([^"\\]+)\\"')
_LABEL = re.compile(r"metric\.labels?\.(\w+)")
_LABEL_EQUALS = re.compile(r'metric\.labels\.(\w+)\s*=\s*\\"([^"\\]+)\\"')
_LABEL_ONE_OF = re.compile(r"metric\.labels\.(\w+)\s*=\s*one_of\(([^)]*)\)")
_OWN = "${local.otel}/"
_LOG_METRIC_LOCAL = re.compile(r"^\$\{local\.(\w+)\}$")

Emitted = Mapping[str, set[tuple[tuple[str, str], ...]]]


@dataclass(frozen=True)
class Reference:
    """One metric one query reads, with the labels it names and the values it compares them to."""

    where: str
    metric: str
    labels: frozenset[str]
    values: tuple[tuple[str, str], ...]


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _body(text: str, start: int) -> str:
    """The text between the brace at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise ValueError(f"unbalanced braces from offset {start}")


def references(module: str = "modules/monitoring") -> list[Reference]:
    found = []
    for tf in sorted((TERRAFORM / module).glob("*.tf")):
        text = _strip_comments(tf.read_text())
        for match in QUERY_BLOCKS.finditer(text):
            body = _body(text, match.end() - 1)
            line = text.count("\n", 0, match.start()) + 1
            values = [(k, v) for k, v in _LABEL_EQUALS.findall(body) if "${" not in v]
            for key, listed in _LABEL_ONE_OF.findall(body):
                values += [(key, v) for v in re.findall(r'\\"([^"\\]+)\\"', listed)]
            labels = frozenset(_LABEL.findall(body))
            found += [
                Reference(f"{tf.name}:{line} {match.group(1)}", metric, labels, tuple(values))
                for metric in _METRIC_TYPE.findall(body)
            ]
    return found


def log_metric_labels(module: str = "modules/monitoring") -> dict[str, frozenset[str]]:
    """`${local.X}` of each log-based metric the module defines -> the labels it extracts."""
    text = "".join(_strip_comments(p.read_text()) for p in (TERRAFORM / module).glob("*.tf"))
    resources = {}
    for match in re.finditer(r'resource "google_logging_metric" "(\w+)"\s*\{', text):
        body = _body(text, match.end() - 1)
        extractors = re.search(r"label_extractors\s*=\s*\{", body)
        keys = (
            frozenset(re.findall(r"^\s*(\w+)\s*=", _body(body, extractors.end() - 1), re.M))
            if extractors
            else frozenset()
        )
        resources[match.group(1)] = keys
    locals_ = {}
    for name, resource in re.findall(
        r'^\s*(\w+)\s*=\s*"logging\.googleapis\.com/user/\$\{google_logging_metric\.(\w+)\.name\}"',
        text,
        re.M,
    ):
        locals_[f"${{local.{name}}}"] = resources[resource]
    return locals_


def unmet(refs: list[Reference], emitted: Emitted) -> list[str]:
    """Every reference that no emitted series (or defined log metric, or Google) answers."""
    logs = log_metric_labels()
    problems = []
    for ref in refs:
        if ref.metric.startswith(GOOGLE_PREFIXES):
            continue
        if _LOG_METRIC_LOCAL.match(ref.metric):
            extracted = logs.get(ref.metric)
            if extracted is None:
                problems.append(f"{ref.where}: {ref.metric} is no log-based metric of the module")
            elif not ref.labels <= extracted:
                problems.append(
                    f"{ref.where}: {ref.metric} has no label {sorted(ref.labels - extracted)}"
                )
            continue
        if not ref.metric.startswith(_OWN):
            problems.append(f"{ref.where}: {ref.metric} is neither ours, a log metric nor Google's")
            continue
        name = ref.metric.removeprefix(_OWN)
        series = emitted.get(name)
        if not series:
            problems.append(f"{ref.where}: nothing emitted {name}")
            continue
        keys = {k for labels in series for k, _ in labels}
        if not ref.labels <= keys:
            problems.append(f"{ref.where}: {name} was emitted without {sorted(ref.labels - keys)}")
        seen = {pair for labels in series for pair in labels}
        problems += [
            f"{ref.where}: {name} was never emitted with {key}={value!r}"
            for key, value in ref.values
            if (key, value) not in seen
        ]
    return problems
