"""Indented JSON written to a file with its long lists and objects streamed in item by item.

A document's per-episode parts (report rows, analytics rows, the manifest's file list) grow with
the episodes; `write_json` writes them one item at a time from a `StreamedList` or
`StreamedObject`, whose items come from a callable (a generator over a spool file, say), so
neither they nor the document's text are ever held whole. The bytes are exactly what
`json.dump(document, file, indent=2, sort_keys=...)` writes for the same values: each item is
encoded on its own and indented to its depth, which is how the encoder nests values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

INDENT = 2
_MARK = "\x00streamed:"
_MARK_JSON = re.compile(r'"\\u0000streamed:(\d+)"')


@dataclass(frozen=True)
class StreamedList:
    """A JSON array whose items `items()` yields when the document is written; iterating it
    yields them afresh (a page renders the same rows)."""

    items: Callable[[], Iterable[Any]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items())


@dataclass(frozen=True)
class StreamedObject:
    """A JSON object whose (key, value) pairs `pairs()` yields, in the order to write them
    (sorted by key when the document is written with `sort_keys`)."""

    pairs: Callable[[], Iterable[tuple[str, Any]]]


Streamed = StreamedList | StreamedObject


def write_json(path: Path, document: Mapping[str, Any], *, sort_keys: bool = False) -> None:
    """`document` and a final newline to `path`, its streamed parts written as they come."""
    with path.open("w") as file:
        dump(document, file, sort_keys=sort_keys)
        file.write("\n")


def dump(document: Mapping[str, Any], file: IO[str], *, sort_keys: bool = False) -> None:
    """`document` as `json.dump(..., indent=2)` writes it, streamed parts item by item."""
    streamed: list[Streamed] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, StreamedList | StreamedObject):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        streamed.append(value)
        return f"{_MARK}{len(streamed) - 1}"

    # The document without its streamed parts is small: encoded whole, then cut at each mark.
    text = json.dumps(document, indent=INDENT, sort_keys=sort_keys, default=placeholder)
    written = 0
    for match in _MARK_JSON.finditer(text):
        file.write(text[written : match.start()])
        line_start = text.rfind("\n", 0, match.start()) + 1
        depth = len(text[line_start:]) - len(text[line_start:].lstrip(" "))
        _write_streamed(streamed[int(match.group(1))], file, depth, sort_keys)
        written = match.end()
    file.write(text[written:])


def _write_streamed(value: Streamed, file: IO[str], depth: int, sort_keys: bool) -> None:
    opening, closing = ("[", "]") if isinstance(value, StreamedList) else ("{", "}")
    inner = "\n" + " " * (depth + INDENT)
    first = True
    for item in _encoded_items(value, sort_keys):
        file.write((opening if first else ",") + inner + item.replace("\n", inner))
        first = False
    file.write(opening + closing if first else "\n" + " " * depth + closing)


def _encoded_items(value: Streamed, sort_keys: bool) -> Iterable[str]:
    if isinstance(value, StreamedList):
        for item in value.items():
            yield json.dumps(item, indent=INDENT, sort_keys=sort_keys)
    else:
        for key, item in value.pairs():
            yield json.dumps(key) + ": " + json.dumps(item, indent=INDENT, sort_keys=sort_keys)
