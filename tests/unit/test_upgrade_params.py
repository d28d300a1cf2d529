"""Bad upgrade input is refused before anything is read: one line naming what is allowed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runbooks.operator_config import OperatorConfig
from runbooks.upgrade.params import (
    UNATTENDED_ENV,
    UpgradeParams,
    fill,
    parse_version,
    unattended_refusal,
)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to": "1.36"}, "is not a Kubernetes version"),
        ({"to": "latest"}, "is not a Kubernetes version"),
        ({"to": "v1.36.3", "provider": "gke"}, "provider"),
        (
            {"to": "v1.36.3", "provider": "command"},
            "needs --control-plane-command and --node-command",
        ),
        (
            {"to": "v1.36.3", "provider": "command", "control_plane_command": "kubeadm upgrade"},
            "needs --node-command",
        ),
        (
            {
                "to": "v1.36.3",
                "provider": "command",
                "control_plane_command": "ssh {host} kubeadm upgrade apply {version}",
                "node_command": "true",
            },
            "unknown placeholder(s) {host}",
        ),
        (
            {
                "to": "v1.36.3",
                "provider": "command",
                "control_plane_command": "a",
                "node_command": "x {nodes}",
            },
            "unknown placeholder(s) {nodes}",
        ),
        ({"to": "v1.36.3", "strategy": "replace"}, "cannot create nodes"),
        ({"to": "v1.36.3", "node_command": "true"}, "are for --provider command"),
        ({"to": "v1.36.3", "max_unavailable": "0"}, "max"),
        ({"to": "v1.36.3", "selector": "pool in (a"}, "selector"),
    ],
)
def test_bad_upgrade_input_is_refused_with_one_line(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        UpgradeParams.model_validate(fields)
    assert message in str(caught.value)


def test_command_templates_fill_node_and_version_word_by_word() -> None:
    params = UpgradeParams(
        to="1.36.3",
        provider="command",
        control_plane_command="ssh {node} sudo kubeadm upgrade apply {version} -y",
        node_command="ssh {node} 'upgrade kubelet' {version}",
    )
    assert params.to == "v1.36.3"
    assert fill(params.control_plane_command or "", "cp-1; rm -rf /", params.to) == [
        "ssh",
        "cp-1; rm -rf /",
        "sudo",
        "kubeadm",
        "upgrade",
        "apply",
        "v1.36.3",
        "-y",
    ]
    assert fill(params.node_command or "", "w1", params.to) == [
        "ssh",
        "w1",
        "upgrade kubelet",
        "v1.36.3",
    ]


def test_versions_order_numerically_and_ignore_build_suffixes() -> None:
    assert parse_version("v1.36.3") > parse_version("v1.9.10")
    assert str(parse_version("v1.35.4+k3s1")) == "v1.35.4"
    assert parse_version("v1.35.4-eks-abc").minor == (1, 35)


def test_approval_none_needs_the_environment_or_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNATTENDED_ENV, raising=False)
    unattended = UpgradeParams(to="v1.36.3", approval="none")
    assert "refused" in (unattended_refusal(unattended, allowed_by_config=False) or "")
    assert unattended_refusal(unattended, allowed_by_config=True) is None
    assert (
        unattended_refusal(unattended.model_copy(update={"dry_run": True}), allowed_by_config=False)
        is None
    )
    assert unattended_refusal(UpgradeParams(to="v1.36.3"), allowed_by_config=False) is None
    monkeypatch.setenv(UNATTENDED_ENV, "1")
    assert unattended_refusal(unattended, allowed_by_config=False) is None
    assert OperatorConfig.model_validate({"unattended_upgrades": True}).unattended_upgrades
