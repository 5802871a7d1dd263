"""Reopen an episode folder that validation accepted: its manifest read again from disk.

An assessment keeps only what the report needs (`EpisodeFacts`); whatever needs more of an
episode (the dataset writer, the analytics, the contact sheet) reopens it here, one episode at a
time, so an import's memory does not grow with the number of episodes. The folders are the
attempt's own downloaded copy, so they are the files validation checked; their checksums are
not verified a second time.
"""

from __future__ import annotations

import json
from pathlib import Path

from bp_episode_format import MANIFEST, RawEpisode

from bp_import.episodes.validation import RawEpisodeManifest


def reopen(path: Path) -> tuple[RawEpisode, RawEpisodeManifest]:
    """The episode at `path` and its manifest, as validation read them."""
    document = json.loads((path / MANIFEST).read_text())
    return RawEpisode(path=path, manifest=document), RawEpisodeManifest.model_validate(document)
