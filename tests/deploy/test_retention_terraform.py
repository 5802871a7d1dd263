"""Retention in deploy/terraform (decision 0077): lifecycle rules under runs/ for raw episodes
and run artefacts, never the scenes users drop nor the published datasets; a TTL policy on the
field the ledger stamps when a run ends."""

from __future__ import annotations

import inspect
from typing import Any

from bp_common.config import Settings
from bp_common.ledger.claims import CLAIMS_KIND, ContentClaim
from bp_common.ledger.firestore import FirestoreLedgerStore
from bp_common.ledger.model import RunRecord
from bp_episode_format import MANIFEST, STATES, STREAM_FILES

from tests.deploy.terraform_model import ENVIRONMENT, Folder, block, blocks, folder, tfvars

ENV: Folder = folder(ENVIRONMENT)


def deletions(bucket: str) -> list[dict[str, Any]]:
    """The conditions of a bucket's Delete rules."""
    rules = blocks(ENV.resource("google_storage_bucket", bucket), "lifecycle_rule")
    return [block(r, "condition") for r in rules if block(r, "action")["type"] == "Delete"]


def by_age(bucket: str) -> list[dict[str, Any]]:
    return [c for c in deletions(bucket) if "age" in c]


def test_raw_episodes_and_run_artefacts_age_out_under_runs_only() -> None:
    raw, runs = by_age("scenes")
    assert raw["age"] == "${var.raw_episode_retention_days}"
    assert runs["age"] == "${var.run_retention_days}"
    assert raw["matches_prefix"] == runs["matches_prefix"] == ["runs/"]  # never scenes/
    assert "matches_suffix" not in runs
    # the rule names exactly the raw episode format's files, each after a folder
    assert raw["matches_suffix"] == "${local.raw_episode_files}"
    names = {MANIFEST, STATES, *STREAM_FILES.values()}
    assert sorted(ENV.locals["raw_episode_files"]) == sorted(f"/{n}" for n in names)


def test_published_datasets_are_never_matched_by_age() -> None:
    assert by_age("datasets") == []
    # only versions already replaced or deleted age out there
    assert [set(c) for c in deletions("datasets")] == [{"days_since_noncurrent_time"}]


def test_retention_defaults_agree_with_the_settings_the_code_reads() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert ENV.default("raw_episode_retention_days") == settings.raw_episode_retention_days
    assert ENV.default("run_retention_days") == settings.retention_days
    assert ENV.locals["common_env"]["BP_RETENTION_DAYS"] == "${tostring(var.run_retention_days)}"
    values = tfvars()
    assert values["raw_episode_retention_days"] <= values["run_retention_days"]


def test_firestore_deletes_ended_runs_by_the_field_the_ledger_stamps() -> None:
    field = ENV.resource("google_firestore_field", "runs_expire_at")
    collection = inspect.signature(FirestoreLedgerStore).parameters["collection"].default
    assert (field["collection"], field["field"]) == (collection, "expire_at")
    assert "expire_at" in RunRecord.model_fields
    assert block(field, "ttl_config") == {}
    claims = ENV.resource("google_firestore_field", "contents_expire_at")
    assert (claims["collection"], claims["field"]) == (f"{collection}_{CLAIMS_KIND}", "expire_at")
    assert "expire_at" in ContentClaim.model_fields and block(claims, "ttl_config") == {}
