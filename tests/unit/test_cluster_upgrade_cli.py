"""`runbook cluster upgrade` refuses what it cannot do in one line, exit 2, nothing started."""

from __future__ import annotations

from typer.testing import CliRunner

from runbooks.cli.cluster import app


def test_upgrading_a_cluster_that_is_not_running_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(
        app, ["upgrade", "--name", "never-started", "--kubernetes-version", "v1.36.3"]
    )
    assert result.exit_code == 2
    assert "cluster 'never-started' is not running" in result.output


def test_upgrading_to_an_unsupported_version_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["upgrade", "--name", "x", "--kubernetes-version", "v1.37.0"])
    assert result.exit_code == 2
    assert "use one of v1.35.4, v1.36.3" in result.output
