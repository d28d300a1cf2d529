"""The local control plane is real enough for drain logic: scheduling, budgets, evictions."""

from __future__ import annotations

import ssl
import time
import urllib.request

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster import nodes, workloads

pytestmark = pytest.mark.cluster


def _evict(core: client.CoreV1Api, namespace: str, pod: str) -> None:
    core.create_namespaced_pod_eviction(
        name=pod,
        namespace=namespace,
        body=client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=namespace)),
    )


def test_deployment_pods_are_scheduled_onto_kwok_nodes_and_become_ready(
    cluster, node_group, namespace
):
    group = node_group(2)
    workloads.create_deployment(
        cluster.api, namespace, "web", replicas=4, node_selector=group.node_selector
    )

    pods = workloads.wait_pods_ready(cluster.api, namespace, expected=4)

    assert {p.spec.node_name for p in pods} <= set(group.names)
    assert all(p.status.pod_ip for p in pods)


def test_budget_gets_status_from_the_disruption_controller(cluster, node_group, namespace):
    group = node_group(2)
    workloads.create_deployment(
        cluster.api,
        namespace,
        "api",
        replicas=3,
        node_selector=group.node_selector,
        max_unavailable=1,
    )
    workloads.wait_pods_ready(cluster.api, namespace, expected=3)

    pdb = workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")

    assert pdb.status.observed_generation == pdb.metadata.generation
    assert pdb.status.expected_pods == 3
    assert pdb.status.disruptions_allowed == 1


def test_eviction_api_allows_then_refuses_with_429_and_pod_is_replaced(
    cluster, node_group, namespace
):
    group = node_group(2)
    workloads.create_deployment(
        cluster.api,
        namespace,
        "api",
        replicas=2,
        node_selector=group.node_selector,
        max_unavailable=1,
    )
    pods = workloads.wait_pods_ready(cluster.api, namespace, expected=2)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    victim = pods[0]
    # While every node is cordoned the replacement stays Pending, so the budget stays spent
    # (KWOK makes a replacement Ready within a second, which would refill the budget).
    for name in group.names:
        cluster.core.patch_node(name, {"spec": {"unschedulable": True}})

    _evict(cluster.core, namespace, victim.metadata.name)  # 201: the budget allows one
    with pytest.raises(ApiException) as refused:
        _evict(cluster.core, namespace, pods[1].metadata.name)  # budget now exhausted

    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body.lower()
    for name in group.names:
        if name != victim.spec.node_name:
            cluster.core.patch_node(name, {"spec": {"unschedulable": False}})
    replacement = _wait_for_replacement(cluster, namespace, old={p.metadata.uid for p in pods})
    assert replacement.spec.node_name != victim.spec.node_name
    assert replacement.spec.node_name in group.names


def _wait_for_replacement(cluster, namespace: str, old: set[str]) -> client.V1Pod:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pod in workloads.wait_pods_ready(cluster.api, namespace, expected=2):
            if pod.metadata.uid not in old:
                return pod
        time.sleep(0.25)
    raise AssertionError("the ReplicaSet did not replace the evicted pod")


def test_cordoned_node_gets_no_new_pods(cluster, node_group, namespace):
    group = node_group(2)
    cordoned, open_node = group.names
    cluster.core.patch_node(cordoned, {"spec": {"unschedulable": True}})

    workloads.create_deployment(
        cluster.api, namespace, "web", replicas=6, node_selector=group.node_selector
    )
    pods = workloads.wait_pods_ready(cluster.api, namespace, expected=6)

    assert {p.spec.node_name for p in pods} == {open_node}


def test_node_made_not_ready_stays_not_ready_until_released(cluster, node_group):
    (name,) = node_group(1).names

    nodes.set_not_ready(cluster.kubeconfig, name)
    _wait_ready_status(cluster, name, ready=False)
    time.sleep(5)  # several heartbeats: KWOK's node-initialize must not undo it
    still = cluster.core.read_node(name)

    assert not nodes.is_ready(still)
    nodes.set_not_ready(cluster.kubeconfig, name, False)
    _wait_ready_status(cluster, name, ready=True)


def test_reported_kubelet_version_and_boot_id_can_be_set(cluster, node_group):
    (name,) = node_group(1).names
    before = cluster.core.read_node(name).status.node_info.boot_id

    nodes.set_node_info(cluster.kubeconfig, name, kubelet_version="v1.37.2", boot_id="rebooted-1")
    time.sleep(3)  # KWOK heartbeats must keep what was set
    info = cluster.core.read_node(name).status.node_info

    assert info.kubelet_version == "v1.37.2"
    assert info.boot_id == "rebooted-1" != before


@pytest.mark.slow
def test_unreachable_node_goes_unknown_and_its_pods_stay_terminating_until_it_returns(
    cluster, node_group, namespace
):
    """A dead kubelet, as kubectl drain's --skip-wait-for-delete-timeout exists for."""
    (name,) = node_group(1).names
    workloads.create_deployment(
        cluster.api, namespace, "web", replicas=1, node_selector={"kubernetes.io/hostname": name}
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, expected=1)

    nodes.set_unreachable(cluster.kubeconfig, name)
    cluster.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=1)
    _wait_ready_status(cluster, name, ready=False, timeout=90)  # node monitor grace period: 40 s
    stuck = cluster.core.read_namespaced_pod(pod.metadata.name, namespace)
    conditions = {c.type: c.status for c in cluster.core.read_node(name).status.conditions}

    assert stuck.metadata.uid == pod.metadata.uid and stuck.metadata.deletion_timestamp
    assert conditions["Ready"] == "Unknown"  # not False: nobody reports for the node
    nodes.set_unreachable(cluster.kubeconfig, name, False)
    _wait_ready_status(cluster, name, ready=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            cluster.core.read_namespaced_pod(pod.metadata.name, namespace)
        except ApiException as exc:
            assert exc.status == 404
            return
        time.sleep(0.25)
    raise AssertionError("the pod did not finish terminating once its node was back")


def _wait_ready_status(cluster, name: str, ready: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nodes.is_ready(cluster.core.read_node(name)) == ready:
            return
        time.sleep(0.25)
    raise AssertionError(f"node {name} Ready={not ready} after {timeout}s")


def test_apiserver_metrics_count_requests(cluster):
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    server = cfg["clusters"][0]["cluster"]["server"]
    user = cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cafile=cfg["clusters"][0]["cluster"]["certificate-authority"])
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])

    with urllib.request.urlopen(f"{server}/metrics", context=ctx, timeout=10) as resp:
        text = resp.read().decode()

    assert "apiserver_request_total{" in text
