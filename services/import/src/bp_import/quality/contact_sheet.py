"""A contact sheet: a PNG grid of camera frames (first, middle, last) of a few episodes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bp_episode_format import RawEpisode
from numpy.typing import NDArray
from PIL import Image, ImageDraw

TILE_HEIGHT = 96
LABEL_WIDTH = 220
GAP = 4
BACKGROUND = (250, 250, 250)


@dataclass(frozen=True)
class SheetRow:
    label: str
    frames: list[NDArray[np.uint8]]


def sample_frames(episode: RawEpisode, camera: str, count: int = 3) -> list[NDArray[np.uint8]]:
    """`count` RGB frames spread over the episode (first, ..., last)."""
    n = episode.n_frames
    wanted = {round(i * (n - 1) / max(1, count - 1)) for i in range(count)} if n else set()
    return [np.asarray(f, dtype=np.uint8) for f in episode.frames_at(camera, "rgb", wanted)]


def _tile(frame: NDArray[np.uint8]) -> Image.Image:
    image = Image.fromarray(frame)
    width = max(1, round(image.width * TILE_HEIGHT / image.height))
    return image.resize((width, TILE_HEIGHT), Image.Resampling.NEAREST)


def contact_sheet_png(rows: Sequence[SheetRow]) -> bytes:
    """One row per (episode, camera): its label, then its frames left to right."""
    tiles = [[_tile(f) for f in row.frames] for row in rows]
    width = LABEL_WIDTH + max((sum(t.width + GAP for t in r) for r in tiles), default=0) + GAP
    height = GAP + len(rows) * (TILE_HEIGHT + GAP) if rows else TILE_HEIGHT
    sheet = Image.new("RGB", (max(width, LABEL_WIDTH + GAP), height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if not rows:
        draw.text((GAP, GAP), "no camera frames to show", fill=(60, 60, 60))
    for r, (row, row_tiles) in enumerate(zip(rows, tiles, strict=True)):
        top = GAP + r * (TILE_HEIGHT + GAP)
        for line, text in enumerate(row.label.split("\n")):
            draw.text((GAP, top + 4 + 14 * line), text[:34], fill=(30, 30, 30))
        left = LABEL_WIDTH
        for tile in row_tiles:
            sheet.paste(tile, (left, top))
            left += tile.width + GAP
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()
