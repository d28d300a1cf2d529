"""Cluster upgrades against the real local control plane: what an operator notices."""

from __future__ import annotations

import sys

import pytest

from flows.rolling_maintenance import run_local as maintain_locally
from tests.cluster.test_maintenance_helpers import params

pytestmark = pytest.mark.cluster


def test_kubelet_version_action_upgrades_each_drained_kwok_node_with_a_reboot(
    cluster, node_group, namespace
):
    group = node_group(2)
    before = {n: cluster.core.read_node(n).status.node_info for n in group.names}
    action = {"kind": "kubelet-version", "kubelet_version": "v1.36.9", "reboots": True}

    report = maintain_locally(params(cluster, group, action=action))

    assert report.status == "succeeded", report.message
    for name in group.names:
        node = cluster.core.read_node(name)
        assert node.status.node_info.kubelet_version == "v1.36.9"
        assert node.status.node_info.boot_id != before[name].boot_id
        assert not node.spec.unschedulable


def test_command_provider_runs_argv_without_a_shell_keeps_output_and_waits_for_the_server(
    cluster,
):
    from runbooks.kube_target import KubeTarget
    from runbooks.upgrade.params import UpgradeParams
    from tasks.upgrade_providers import CommandProvider, ProviderError
    from tasks.upgrade_state import api_server_version

    target = KubeTarget(kubeconfig=cluster.kubeconfig)
    running = api_server_version(target)
    echo = f"{sys.executable} -c 'import sys; print(sys.argv[1:])' {{version}} '$HOME;x'"
    ok = CommandProvider(
        UpgradeParams(
            to=running,
            provider="command",
            control_plane_command=echo,
            node_command="true",
            target=target,
            command_timeout="20s",
        )
    ).upgrade_control_plane(running)
    assert ok.output == [f"['{running}', '$HOME;x']"]  # one word each, no shell expansion
    assert f"API server at {running}" in ok.summary

    failing = UpgradeParams(
        to=running,
        provider="command",
        control_plane_command=f"{sys.executable} -c 'print(\"kubeadm: no\"); raise SystemExit(3)'",
        node_command="true",
        target=target,
    )
    with pytest.raises(ProviderError, match=r"exited 3; output: kubeadm: no"):
        CommandProvider(failing).upgrade_control_plane(running)

    never = UpgradeParams(
        to="v1.99.0",
        provider="command",
        control_plane_command="true",
        node_command="true",
        target=target,
        command_timeout="3s",
    )
    with pytest.raises(ProviderError, match=f"did not report v1.99.0 .* \\(last: {running}\\)"):
        CommandProvider(never).upgrade_control_plane("v1.99.0")
