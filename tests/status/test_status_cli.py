"""`bp status serve` refuses to expose the replay button unauthenticated in production."""

from __future__ import annotations

from bp_common.cli import app
from typer.testing import CliRunner


def test_production_needs_iap_or_an_oidc_check() -> None:
    result = CliRunner().invoke(app, ["status", "serve"], env={"PIPELINE_ENV": "production"})
    assert result.exit_code == 2
    assert "callers must be authenticated" in result.output
    assert "--platform-auth" in result.output


def test_oidc_needs_both_the_audience_and_the_account() -> None:
    result = CliRunner().invoke(
        app, ["status", "serve", "--oidc-audience", "https://status.example"]
    )
    assert result.exit_code == 2 and "go together" in result.output
