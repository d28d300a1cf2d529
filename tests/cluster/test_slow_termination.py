"""Pods can take their time to terminate: KWOK deletes a pod carrying
kube-runbooks.local/terminate-after that long after its eviction, or when its grace period ends if
that comes first (a kubelet's SIGKILL), and every other pod at once."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster import workloads

pytestmark = pytest.mark.cluster

DELAY = 4.0
LONG_DELAY = 120.0
SHORT_GRACE = 3
# The grace period ends at deletionTimestamp, which the API keeps at whole seconds: KWOK rounds the
# start of the deletion up, so the pod may go up to 1 s after the grace period.
ROUNDING = 1.0
# KWOK starts its timer when it sees the deletion, a few ms after the eviction; on a busy 2-core
# machine allow it and the apiserver a few seconds more.
SLACK = 4.0


def _evict(core: client.CoreV1Api, pod: client.V1Pod, grace_period: int | None = None) -> None:
    meta = pod.metadata
    core.create_namespaced_pod_eviction(
        name=meta.name,
        namespace=meta.namespace,
        body=client.V1Eviction(
            metadata=client.V1ObjectMeta(name=meta.name, namespace=meta.namespace),
            delete_options=client.V1DeleteOptions(grace_period_seconds=grace_period)
            if grace_period is not None
            else None,
        ),
    )


def _read(core: client.CoreV1Api, pod: client.V1Pod) -> client.V1Pod | None:
    try:
        return core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _delete(core: client.CoreV1Api, pod: client.V1Pod, grace_period: int) -> None:
    core.delete_namespaced_pod(
        pod.metadata.name, pod.metadata.namespace, grace_period_seconds=grace_period
    )


def _seconds_until_gone(core: client.CoreV1Api, pod: client.V1Pod, since: float) -> float:
    deadline = since + DELAY + SLACK + 30
    while time.monotonic() < deadline:
        if _read(core, pod) is None:
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(
        f"pod {pod.metadata.name} still there {deadline - since:.0f}s after eviction/deletion"
    )


def _one_pod(cluster, namespace: str, group, **options) -> client.V1Pod:
    workloads.create_deployment(
        cluster.api, namespace, "app", replicas=1, node_selector=group.node_selector, **options
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, expected=1)
    return pod


@pytest.mark.parametrize("grace_period", [None, 300], ids=["pod-grace", "grace-300"])
def test_annotated_pod_stays_terminating_for_its_delay_after_eviction(
    cluster, node_group, namespace, grace_period
):
    """The delay is the annotation's when the grace period is longer (kubectl drain
    --grace-period=300 must not stretch it)."""
    pod = _one_pod(cluster, namespace, node_group(1), terminate_after_seconds=DELAY)
    assert pod.metadata.annotations == {"kube-runbooks.local/terminate-after": "4s"}

    evicted_at = time.monotonic()
    _evict(cluster.core, pod, grace_period)
    time.sleep(1)
    terminating = _read(cluster.core, pod)

    assert terminating is not None, "the annotated pod went at once"
    assert terminating.metadata.deletion_timestamp is not None
    gone_after = _seconds_until_gone(cluster.core, pod, evicted_at)
    assert DELAY <= gone_after <= DELAY + SLACK


def test_plain_pod_goes_at_once_after_eviction(cluster, node_group, namespace):
    pod = _one_pod(cluster, namespace, node_group(1))
    assert not pod.metadata.annotations

    evicted_at = time.monotonic()
    _evict(cluster.core, pod)

    assert _seconds_until_gone(cluster.core, pod, evicted_at) < 2


@pytest.mark.parametrize("end", [_evict, _delete], ids=["eviction", "delete"])
def test_annotated_pod_goes_when_a_shorter_grace_period_ends(cluster, node_group, namespace, end):
    """A pod annotated 120 s but evicted or deleted with a 3 s grace period is gone after about 3 s,
    as a kubelet would SIGKILL its container then, not after 120 s."""
    pod = _one_pod(cluster, namespace, node_group(1), terminate_after_seconds=LONG_DELAY)

    started = time.monotonic()
    end(cluster.core, pod, SHORT_GRACE)
    time.sleep(1)
    terminating = _read(cluster.core, pod)

    assert terminating is not None, "the annotated pod went at once"
    assert terminating.metadata.deletion_grace_period_seconds == SHORT_GRACE
    gone_after = _seconds_until_gone(cluster.core, pod, started)
    assert SHORT_GRACE <= gone_after <= SHORT_GRACE + ROUNDING + SLACK


def test_pod_whose_annotation_is_not_a_duration_goes_at_once(cluster, node_group, namespace):
    """KWOK cannot evaluate the delay ("Failed to get delay" in its log) and deletes the pod with
    none, rather than never."""
    pod = _one_pod(cluster, namespace, node_group(1), terminate_after_seconds=DELAY)
    cluster.core.patch_namespaced_pod(
        pod.metadata.name,
        namespace,
        {"metadata": {"annotations": {"kube-runbooks.local/terminate-after": "soon"}}},
    )

    evicted_at = time.monotonic()
    _evict(cluster.core, pod)

    assert _seconds_until_gone(cluster.core, pod, evicted_at) < 2
