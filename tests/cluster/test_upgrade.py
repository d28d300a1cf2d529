"""Cluster upgrades against the real local control plane: what an operator notices."""

from __future__ import annotations

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
