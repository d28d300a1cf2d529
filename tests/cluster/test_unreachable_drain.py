"""Draining a node that does not answer: its evicted pods never finish terminating.

The node is cut off from KWOK (no kubelet: no heartbeats, no pod ever confirmed gone), as a
powered-off machine would be; the maintenance action brings it back, as a power cycle would.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from runbooks.cluster import nodes, workloads
from tests.cluster.test_maintenance_helpers import cli, node_state, pods_on

pytestmark = pytest.mark.cluster

POWER_CYCLE = (
    "import sys\nfrom pathlib import Path\n"
    "from runbooks.cluster.nodes import set_unreachable\n"
    "set_unreachable(Path(sys.argv[1]), sys.argv[2], False)\n"
)


def _lease() -> list[str]:
    return ["--lease-name", f"maint-{uuid.uuid4().hex[:8]}", "--lease-duration", "5s"]


def _cut_off_node_with_pods(cluster: Any, group: Any, namespace: str) -> tuple[str, int]:
    """Spread 4 pods over the group, cut off a node that holds some; returns it and its count."""
    workloads.create_deployment(cluster.api, namespace, "web", 4, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 4)
    node = max(group.names, key=lambda n: len(pods_on(cluster, namespace, n)))
    count = len(pods_on(cluster, namespace, node))
    assert count > 0
    nodes.set_unreachable(cluster.kubeconfig, node)
    return node, count


def test_skip_wait_for_delete_timeout_lets_the_drain_go_on_without_the_dead_kubelet(
    cluster: Any, node_group: Any, namespace: str, tmp_path: Path
) -> None:
    group = node_group(2)
    node, count = _cut_off_node_with_pods(cluster, group, namespace)
    script = tmp_path / "power_cycle.py"
    script.write_text(POWER_CYCLE)
    try:
        done = cli(
            cluster, node, "--grace-period", "1", "--skip-wait-for-delete-timeout", "2",
            "--drain-timeout", "120s", "--action", "command",
            "--command", f"{sys.executable} {script} {cluster.kubeconfig} {{node}}",
            "--output", "json", *_lease(),
        )  # fmt: skip
    finally:
        nodes.set_unreachable(cluster.kubeconfig, node, False)

    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["nodes"]
    assert result["result"] == "maintained"
    assert len(result["pods_evicted"]) == count
    notes = " ".join(result["notes"])
    assert "not waited for" in notes and "node unreachable?" in notes
    assert all(p in notes for p in result["pods_evicted"])
    assert result["durations"]["drain"] < 30  # the grace period, 2 s and a turn; not 120 s
    assert node_state(cluster, [node]) == {node: (False, None)}


def test_without_it_the_drain_waits_for_the_dead_kubelet_until_its_timeout(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(2)
    node, _ = _cut_off_node_with_pods(cluster, group, namespace)
    try:
        done = cli(
            cluster, node, "--grace-period", "1", "--drain-timeout", "8s", "--output", "json",
            *_lease(),
        )  # fmt: skip
        stuck = [p for p in cluster.core.list_namespaced_pod(namespace).items
                 if p.spec.node_name == node and p.metadata.deletion_timestamp]  # fmt: skip
    finally:
        nodes.set_unreachable(cluster.kubeconfig, node, False)

    assert done.returncode == 1, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["nodes"]
    assert result["failed_step"] == "drain"
    assert "pods still terminating" in result["error"]
    assert stuck  # evicted, never confirmed gone by the node
    assert node_state(cluster, [node]) == {node: (False, None)}  # on-drain-failure: uncordon
