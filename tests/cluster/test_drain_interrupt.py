"""An operator's interrupt reaches a drain at its next turn, whatever the drain waits for: a
budget that refuses evictions, or pods that take their time to terminate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tasks.kube.drain as drain_module
from runbooks.cluster import workloads
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.drain_plan import DrainOptions
from tasks.kube.drain import DrainFailed, drain
from tasks.kube.retry import INTERRUPT, TURN_SECONDS

pytestmark = pytest.mark.cluster
INTERRUPT_AFTER = 2.0
SLACK = 5.0  # an eviction round and a 2-core machine's scheduling


@pytest.fixture(autouse=True)
def no_interrupt() -> Iterator[None]:
    INTERRUPT.clear()
    yield
    INTERRUPT.clear()


def _seconds_to_stop_draining(cluster: Any, group: Any) -> float:
    """Cordon the group's node, drain it, interrupt; seconds from the interrupt to the stop."""
    (node,) = group.names
    cluster.core.patch_node(node, {"spec": {"unschedulable": True}})
    started = time.monotonic()
    threading.Timer(INTERRUPT_AFTER, INTERRUPT.set).start()
    with pytest.raises(DrainFailed, match="interrupted by the operator"):
        drain(KubeTarget(kubeconfig=cluster.kubeconfig), node, DrainOptions(), timeout=300)
    return time.monotonic() - started - INTERRUPT_AFTER


def test_a_drain_blocked_by_a_budget_stops_at_its_next_turn(
    cluster: Any, node_group: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As late in a long block: the next retry of the refused evictions is minutes away.
    monkeypatch.setattr(drain_module, "BUDGET_RETRY_FIRST", 300.0)
    group = node_group(1)
    workloads.create_deployment(
        cluster.api, namespace, "web", 2, group.node_selector, min_available=2
    )
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")
    assert _seconds_to_stop_draining(cluster, group) < TURN_SECONDS + SLACK
    assert len(workloads.wait_pods_ready(cluster.api, namespace, 2)) == 2  # nothing evicted


def test_a_drain_waiting_for_pods_to_terminate_stops_at_its_next_turn(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(1)
    workloads.create_deployment(
        cluster.api, namespace, "slow", 1, group.node_selector, terminate_after_seconds=300
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    assert _seconds_to_stop_draining(cluster, group) < TURN_SECONDS + SLACK
    evicted = cluster.core.read_namespaced_pod(pod.metadata.name, namespace)
    assert evicted.metadata.deletion_timestamp is not None  # evicted, still terminating
