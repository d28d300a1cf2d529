"""A maintenance action runs only what the operator allowed: anything else is refused before
the plan, exit 2 in one line naming it and where to allow it, and no node is touched. Through
the CLI and through a Prefect flow run (the UI and API never pass through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.rolling_maintenance import rolling_node_maintenance
from runbooks.maintenance.params import InvalidRequest
from tests.cluster.test_maintenance_helpers import cli, node_state, params

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "operator.yaml"
    path.write_text("allow:\n  commands: [[/usr/local/sbin/patch-node]]\n  images: []\n")
    monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
    return path


def test_a_command_not_allowed_exits_2_and_cordons_nothing(
    cluster, node_group, operator_config: Path, tmp_path: Path
):
    group = node_group(2)
    marker = tmp_path / "ran"

    done = cli(cluster, *group.names, "--action", "command", "--command", f"touch {marker}")

    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"command 'touch {marker}' is not allowed" in line
    assert f"allow.commands in the operator configuration ({operator_config})" in line
    assert not marker.exists()
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_a_job_image_not_allowed_exits_2_and_cordons_nothing(
    cluster, node_group, operator_config: Path
):
    group = node_group(1)

    done = cli(cluster, *group.names, "--action", "job")

    assert done.returncode == 2, done.stderr
    assert "job image 'busybox:1.36' is not allowed" in done.stderr
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


@pytest.mark.usefixtures("prefect_server")
def test_a_flow_run_with_an_image_not_allowed_fails_before_the_plan(
    cluster, node_group, operator_config: Path
):
    group = node_group(1)
    action = {"kind": "job", "job_image": "evil.example/root:latest", "command": "sh"}

    state = rolling_node_maintenance(params(cluster, group, action=action), return_state=True)

    assert state.is_failed()
    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, InvalidRequest)
    assert "job image 'evil.example/root:latest' is not allowed" in str(refused)
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
