"""KWOK nodes of the local cluster: create them, and change their health or version on demand.

NotReady uses KWOK's chaos stage (a label), because a plain status patch is undone at once by the
node-initialize stage. Kubelet version and boot ID are status fields KWOK leaves alone, so a patch
simulates an upgraded or rebooted node. An unreachable node (a dead kubelet) is one KWOK stops
managing: it renews no lease and finishes no pod, so the node controller marks it Unknown and
its evicted pods stay Terminating, as on a powered-off machine.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.kube_client import client_for_kubeconfig

NOT_READY_LABEL = "node-not-ready.stage.kwok.x-k8s.io"
KWOK_NODE_LABELS = {
    "type": "kwok",
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "node-role.kubernetes.io/worker": "",
}
# KWOK manages the nodes carrying this label with this value (the launcher's
# --manage-nodes-with-label-selector); any other value cuts the node off, as if unplugged.
# A label, not an annotation: the apiserver filters a watch by label, so a node that stops
# matching reaches KWOK as deleted and KWOK lets go of it (its annotation selector filters on
# the client side, and KWOK would go on renewing the node's lease).
KWOK_MANAGED_LABEL = "kube-runbooks.local/kwok-managed"
KWOK_MANAGED = "true"
KWOK_CUT_OFF = "false"


def core_api(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(client_for_kubeconfig(kubeconfig))


def node_name(index: int) -> str:
    return f"worker-{index}"


def _node_body(name: str, kubelet_version: str) -> client.V1Node:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return client.V1Node(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={
                **KWOK_NODE_LABELS,
                "kubernetes.io/hostname": name,
                KWOK_MANAGED_LABEL: KWOK_MANAGED,
            },
            annotations={
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        ),
        spec=client.V1NodeSpec(),
        status=client.V1NodeStatus(
            capacity=capacity,
            allocatable=capacity,
            node_info=client.V1NodeSystemInfo(
                architecture="amd64",
                boot_id=str(uuid.uuid4()),
                container_runtime_version="kwok",
                kernel_version="kwok",
                kube_proxy_version="",
                kubelet_version=kubelet_version,
                machine_id=name,
                operating_system="linux",
                os_image="kwok",
                system_uuid=str(uuid.uuid4()),
            ),
        ),
    )


def add_nodes(
    kubeconfig: Path,
    count: int | None = None,
    names: list[str] | None = None,
    labels: dict[str, str] | None = None,
    kubelet_version: str | None = None,
) -> list[str]:
    """Create nodes by ``names`` (or ``worker-1..count``); existing ones are kept.

    ``labels`` lets a test group its own nodes and select them, so tests sharing one cluster
    never touch each other's nodes. ``kubelet_version``: what the nodes' kubelets report;
    default the API server's own version, as a freshly provisioned cluster has it.
    """
    api_client = client_for_kubeconfig(kubeconfig)
    api = client.CoreV1Api(api_client)
    if kubelet_version is None:
        kubelet_version = client.VersionApi(api_client).get_code().git_version
    if names is None:
        names = [node_name(i) for i in range(1, (count or 0) + 1)]
    for name in names:
        body = _node_body(name, kubelet_version)
        body.metadata.labels.update(labels or {})
        try:
            api.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    return names


def wait_nodes_ready(kubeconfig: Path, names: list[str], timeout: float = 60) -> None:
    api = core_api(kubeconfig)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while time.monotonic() < deadline:
        pending = {n for n in pending if not is_ready(api.read_node(n))}
        if not pending:
            return
        time.sleep(0.25)
    raise TimeoutError(f"nodes not Ready after {timeout:.0f}s: {', '.join(sorted(pending))}")


def is_ready(node: client.V1Node) -> bool:
    for condition in (node.status.conditions or []) if node.status else []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def wait_until_usable(kubeconfig: Path, nodes: int, timeout: float = 120) -> None:
    """Wait until ``nodes`` nodes are Ready and the default ServiceAccount exists.

    Without the ServiceAccount, pods in a fresh namespace are refused by admission.
    """
    api = core_api(kubeconfig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = sum(is_ready(n) for n in api.list_node().items)
        try:
            api.read_namespaced_service_account("default", "default")
            have_sa = True
        except ApiException:
            have_sa = False
        if ready >= nodes and have_sa:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{nodes} Ready nodes and serviceaccount/default not seen in {timeout:.0f}s")


def set_not_ready(kubeconfig: Path, name: str, not_ready: bool = True) -> None:
    """Make a node report NotReady (KWOK chaos stage) until released with ``not_ready=False``."""
    label = "true" if not_ready else None
    core_api(kubeconfig).patch_node(name, {"metadata": {"labels": {NOT_READY_LABEL: label}}})


def set_unreachable(kubeconfig: Path, name: str, unreachable: bool = True) -> None:
    """Cut a node off (KWOK stops managing it: no heartbeats, no pod is started or finished) or
    bring it back. The node controller marks it Unknown after the node monitor grace period."""
    value = KWOK_CUT_OFF if unreachable else KWOK_MANAGED
    core_api(kubeconfig).patch_node(name, {"metadata": {"labels": {KWOK_MANAGED_LABEL: value}}})


def set_node_info(
    kubeconfig: Path, name: str, kubelet_version: str | None = None, boot_id: str | None = None
) -> None:
    """Report a new kubelet version and/or boot ID, as an upgraded or rebooted node would."""
    info: dict[str, str] = {}
    if kubelet_version:
        info["kubeletVersion"] = kubelet_version
    if boot_id:
        info["bootID"] = boot_id
    if info:
        core_api(kubeconfig).patch_node_status(name, {"status": {"nodeInfo": info}})
