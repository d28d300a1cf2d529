"""A run cannot loosen what the operator configured: its approval policy, and which commands
and images the maintenance actions may run. Refused before the plan, so no cluster is read:
these runs point at a kubeconfig that does not exist and must never get that far."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flows.rolling_maintenance import run_local
from runbooks.maintenance.params import InvalidRequest, MaintenanceParams

RUNBOOK = str(Path(sys.executable).parent / "runbook")
CONFIG = """
approvals:
  rolling-node-maintenance:
    users: [U0ALICE, U0BOB]
    timeout: 30m
allow:
  commands: [[/usr/local/sbin/patch-node]]
  images: [registry.example.com/ops/patcher:1.4]
"""


@pytest.fixture
def operator_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "operator.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
    return path


def params(tmp_path: Path, **changes: Any) -> MaintenanceParams:
    base: dict[str, Any] = {
        "target": {"kubeconfig": str(tmp_path / "no-such-kubeconfig")},
        "nodes": ["worker-1"],
    }
    return MaintenanceParams.model_validate(base | changes)


def test_run_parameters_cannot_allow_self_approval(operator_config: Path) -> None:
    with pytest.raises(ValidationError, match="set only in the operator configuration"):
        MaintenanceParams.model_validate(
            {"nodes": ["worker-1"], "approval": {"users": ["U0ALICE"], "allow_self_approval": True}}
        )


@pytest.mark.parametrize(
    ("approval", "message"),
    [
        ({"users": ["U0MALLORY"]}, "U0MALLORY not among the approvers"),
        ({"timeout": "7d"}, "is longer than the 30m"),
    ],
)
def test_run_parameters_cannot_pick_their_own_approvers_or_wait_longer(
    operator_config: Path, tmp_path: Path, approval: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        run_local(params(tmp_path, approval=approval))
    assert str(operator_config) in str(refused.value)  # says where the policy lives


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"kind": "command", "command": "touch /tmp/owned-{node}"}, "command 'touch"),
        ({"kind": "job", "job_image": "evil.example/root:latest"}, "job image"),
        (
            {"kind": "job", "job_image": "registry.example.com/ops/patcher:1.4", "command": "sh"},
            "job command 'sh'",
        ),
    ],
)
def test_a_command_or_image_the_operator_did_not_allow_is_refused_before_the_plan(
    operator_config: Path, tmp_path: Path, action: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        run_local(params(tmp_path, action=action))


def test_the_cli_refuses_a_command_not_allowed_in_one_line_exit_2(
    operator_config: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = subprocess.run(
        [RUNBOOK, "maintain", "worker-1", "--kubeconfig", str(tmp_path / "none"),
         "--action", "command", "--command", f"touch {marker}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: command 'touch {marker}' is not allowed: add it (or an argv prefix of "
        f"it) under allow.commands in the operator configuration ({operator_config})"
    ]
    assert not marker.exists()
