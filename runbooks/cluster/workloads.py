"""Sample workloads for the local cluster: the shapes a drain must handle.

Deployments with PodDisruptionBudgets, StatefulSets, DaemonSets, bare pods and pods with emptyDir.
Used by the demo and by cluster tests; every workload can be pinned to a group of nodes through a
node selector, so tests sharing one cluster stay on their own nodes. Deployments can ask for pods
that take some seconds to terminate (KWOK deletes the others at once).
"""

from __future__ import annotations

import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster.kwok_config import TERMINATE_AFTER_ANNOTATION

IMAGE = "pause:3.10"  # never pulled: KWOK runs no containers


def _pod_spec(
    node_selector: dict[str, str] | None, empty_dir: bool = False, grace: int | None = None
) -> client.V1PodSpec:
    volumes = [client.V1Volume(name="scratch", empty_dir=client.V1EmptyDirVolumeSource())]
    mounts = [client.V1VolumeMount(name="scratch", mount_path="/scratch")]
    return client.V1PodSpec(
        containers=[
            client.V1Container(
                name="app",
                image=IMAGE,
                volume_mounts=mounts if empty_dir else None,
                resources=client.V1ResourceRequirements(requests={"cpu": "10m", "memory": "16Mi"}),
            )
        ],
        volumes=volumes if empty_dir else None,
        node_selector=node_selector,
        termination_grace_period_seconds=grace,
    )


def terminate_after(seconds: float) -> dict[str, str]:
    """The pod annotation that makes KWOK delete a terminating pod ``seconds`` after its eviction
    or deletion, as a Go duration ("5s", "0.5s")."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    if not seconds > 0 or text == "0":
        raise ValueError(f"termination delay must be at least 1 ms, got {seconds} s")
    return {TERMINATE_AFTER_ANNOTATION: f"{text}s"}


def ensure_namespace(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # ServiceAccount admission refuses pods until it exists
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException:
            time.sleep(0.2)
    raise TimeoutError(f"serviceaccount default never appeared in {namespace}")


def create_deployment(
    api: client.ApiClient,
    namespace: str,
    name: str,
    replicas: int,
    node_selector: dict[str, str] | None = None,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    empty_dir: bool = False,
    terminate_after_seconds: float | None = None,
) -> None:
    """A Deployment, and a PodDisruptionBudget when ``min_available`` or ``max_unavailable``.

    With ``terminate_after_seconds`` its pods stay terminating that long once evicted or deleted,
    or until their grace period ends if that comes first.
    """
    labels = {"app": name}
    annotations = terminate_after(terminate_after_seconds) if terminate_after_seconds else None
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                    spec=_pod_spec(node_selector, empty_dir=empty_dir),
                ),
            ),
        ),
    )
    if min_available is not None or max_unavailable is not None:
        create_pdb(api, namespace, f"{name}-pdb", labels, min_available, max_unavailable)


def create_pdb(
    api: client.ApiClient,
    namespace: str,
    name: str,
    match_labels: dict[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> None:
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        namespace,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodDisruptionBudgetSpec(
                selector=client.V1LabelSelector(match_labels=match_labels),
                min_available=min_available,
                max_unavailable=max_unavailable,
            ),
        ),
    )


def create_statefulset(
    api: client.ApiClient,
    namespace: str,
    name: str,
    replicas: int,
    node_selector: dict[str, str] | None = None,
) -> None:
    labels = {"app": name}
    client.AppsV1Api(api).create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1StatefulSetSpec(
                replicas=replicas,
                service_name=name,
                pod_management_policy="Parallel",
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=_pod_spec(node_selector)
                ),
            ),
        ),
    )


def create_daemonset(
    api: client.ApiClient,
    namespace: str,
    name: str,
    node_selector: dict[str, str] | None = None,
) -> None:
    labels = {"app": name}
    client.AppsV1Api(api).create_namespaced_daemon_set(
        namespace,
        client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1DaemonSetSpec(
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=_pod_spec(node_selector)
                ),
            ),
        ),
    )


def create_bare_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    node_name: str,
    empty_dir: bool = False,
) -> None:
    """A pod with no controller on ``node_name``: kubectl drain refuses it without --force."""
    spec = _pod_spec(None, empty_dir=empty_dir)
    spec.node_name = node_name
    client.CoreV1Api(api).create_namespaced_pod(
        namespace,
        client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels={"app": name}), spec=spec),
    )


def _pod_ready(pod: client.V1Pod) -> bool:
    if pod.status is None or pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def wait_pods_ready(
    api: client.ApiClient, namespace: str, expected: int, timeout: float = 90
) -> list[client.V1Pod]:
    """Wait until ``expected`` pods in ``namespace`` are Running and Ready; return them."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    ready: list[client.V1Pod] = []
    while time.monotonic() < deadline:
        ready = [p for p in core.list_namespaced_pod(namespace).items if _pod_ready(p)]
        if len(ready) >= expected:
            return ready
        time.sleep(0.25)
    raise TimeoutError(f"{len(ready)}/{expected} pods Ready in {namespace} after {timeout:.0f}s")


def wait_pdb_observed(
    api: client.ApiClient, namespace: str, name: str, timeout: float = 60
) -> client.V1PodDisruptionBudget:
    """Wait until the disruption controller has processed the budget's current generation.

    Until then the Eviction API answers 429 for every pod it covers, for the wrong reason.
    """
    policy = client.PolicyV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pdb = policy.read_namespaced_pod_disruption_budget(name, namespace)
        status = pdb.status
        if (
            status is not None
            and status.observed_generation == pdb.metadata.generation
            and status.expected_pods is not None
            and status.current_healthy == status.expected_pods
        ):
            return pdb
        time.sleep(0.25)
    raise TimeoutError(f"PodDisruptionBudget {namespace}/{name} not observed in {timeout:.0f}s")
