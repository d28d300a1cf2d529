"""Who may start an upgrade, decided before anything is read: the operator's configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.cluster_upgrade import FLOW_NAME, upgrade_rules
from runbooks.audit import AuditStore, RecordFilter
from runbooks.maintenance.params import InvalidRequest
from runbooks.upgrade.params import UNATTENDED_ENV, UpgradeParams
from tasks.audit import audit_context


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    monkeypatch.delenv(UNATTENDED_ENV, raising=False)

    def write(text: str) -> None:
        path = tmp_path / "operator.yaml"
        path.write_text(text)
        monkeypatch.setenv("RUNBOOK_CONFIG", str(path))

    return write


def test_slack_approval_needs_the_operators_policy_for_cluster_upgrade(operator) -> None:
    operator("approvals: {}\n")
    with pytest.raises(InvalidRequest, match=r"approvals\.cluster-upgrade"):
        upgrade_rules(UpgradeParams(to="v1.36.3"))
    operator(f"approvals:\n  {FLOW_NAME}:\n    users: [U0ALICE]\n")
    policy = upgrade_rules(UpgradeParams(to="v1.36.3"))
    assert policy is not None and policy.users == ["U0ALICE"]


def test_provider_commands_must_be_allowed_by_the_operator(operator) -> None:
    command = UpgradeParams(
        to="v1.36.3",
        provider="command",
        control_plane_command="ssh {node} sudo kubeadm upgrade apply {version} -y",
        node_command="ssh {node} sudo upgrade-kubelet {version}",
        approval="none",
        dry_run=True,
    )
    operator("allow:\n  commands: ['ssh {node} sudo upgrade-kubelet']\n")
    with pytest.raises(InvalidRequest, match=r"kubeadm upgrade apply.* is not allowed"):
        upgrade_rules(command)
    operator("allow:\n  commands: ['ssh {node} sudo']\n")
    assert upgrade_rules(command) is None


def test_unattended_upgrade_allowed_by_the_operator_is_audited_with_who_ran_it(
    operator, audit_store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_ACTOR", "alice@example")
    unattended = UpgradeParams(to="v1.36.3", approval="none")
    operator("{}\n")
    with pytest.raises(InvalidRequest, match=UNATTENDED_ENV):
        upgrade_rules(unattended)
    operator("unattended_upgrades: true\n")
    with audit_context(FLOW_NAME, flow_run_id="run-1"):
        assert upgrade_rules(unattended) is None
    [waived] = audit_store.records(RecordFilter(action="approval.waived"))
    assert waived.actor == "alice@example" and waived.details["to"] == "v1.36.3"
