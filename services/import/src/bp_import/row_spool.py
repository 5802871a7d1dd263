"""Rows spooled to a JSON-lines file as they are made, and read back one at a time.

What an import records per episode (analytics measures, the ground-truth index's entries) is
needed again only when a document is written; kept in memory, it would grow with the episodes.
A spool keeps it on disk: `append` writes a row, and iterating reads the rows back from the
start, as often as a document needs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class RowSpool(Collection[T]):
    """Items of one kind in a JSON-lines file at `path`: `encode` makes an item a JSON value,
    `decode` makes it back (floats come back exactly: JSON keeps their shortest repr)."""

    def __init__(self, path: Path, encode: Callable[[T], Any], decode: Callable[[Any], T]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        self.path = path
        self._encode = encode
        self._decode = decode
        self._count = 0

    def append(self, item: T) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(self._encode(item)) + "\n")
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        with self.path.open() as file:
            for line in file:
                yield self._decode(json.loads(line))

    def __contains__(self, item: object) -> bool:
        return any(mine == item for mine in self)


class SpoolView(Collection[U]):
    """One part of each item of a collection (a spool), taken afresh on every pass."""

    def __init__(self, items: Collection[T], part: Callable[[T], U]) -> None:
        self._items = items
        self._part = part

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[U]:
        return map(self._part, self._items)

    def __contains__(self, item: object) -> bool:
        return any(mine == item for mine in self)


def json_rows(path: Path) -> RowSpool[dict[str, Any]]:
    """A spool of JSON objects, kept as they are."""
    return RowSpool(path, dict, dict)
