"""The plan's pod reads: one LIST over many nodes finds exactly what a LIST per node finds."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.cluster import workloads
from runbooks.kube_target import KubeTarget
from tasks.kube import pods

pytestmark = pytest.mark.cluster


def test_one_list_for_many_nodes_matches_a_list_per_node(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(pods.ONE_LIST_FROM)
    workloads.create_deployment(cluster.api, namespace, "web", 6, group.node_selector)
    workloads.create_daemonset(cluster.api, namespace, "agent", group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 6 + len(group.names))
    target = KubeTarget(kubeconfig=cluster.kubeconfig)

    together = pods.pods_by_node(target, group.names)
    apart = {n: pods.node_pods(target, n)[0] for n in group.names}

    def uids(found: dict[str, list[Any]]) -> dict[str, set[str]]:
        return {n: {p.uid for p in ps} for n, ps in found.items()}

    assert uids(together) == uids(apart)
    assert sum(len(ps) for ps in together.values()) == 6 + len(group.names)
    assert all(p.node == n for n, ps in together.items() for p in ps)
