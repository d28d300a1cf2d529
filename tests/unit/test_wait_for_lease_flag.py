"""`--wait-for-lease` is operator input: a duration, read at the boundary; anything else is
refused in one line (exit 2) before anything is read or changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.maintenance.params import LeaseSettings


@pytest.mark.parametrize(
    ("given", "seconds"), [(None, 0), ("0s", 0), ("90s", 90), ("2m", 120), ("1h30m", 5400)]
)
def test_the_lease_wait_is_a_duration_and_zero_by_default(given, seconds):
    settings = LeaseSettings.model_validate({} if given is None else {"wait": given})
    assert settings.wait == timedelta(seconds=seconds)


@pytest.mark.parametrize("given", ["soon", "-5s", "5 minutes"])
def test_a_wait_for_lease_that_is_not_a_duration_is_refused_in_one_line(given, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"  # never read: the flag is refused first
    result = CliRunner().invoke(
        app, ["maintain", "node-1", "--wait-for-lease", given, "--kubeconfig", str(kubeconfig)]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: lease.wait: "), result.output
