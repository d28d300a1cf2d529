"""Where an upgrade stands, read from the cluster (never from memory or a local file).

The API server's version says whether the control-plane step is done; each Node's kubelet
version and the engine's cordon mark say which nodes are done, in hand, or still to do. A rerun
after a kill reads the same and continues from there.
"""

from __future__ import annotations

from kubernetes import client
from pydantic import BaseModel

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.ownership import CORDONED_BY_ANNOTATION
from runbooks.upgrade.params import parse_version
from tasks.kube import client as kube
from tasks.kube.cluster_reads import probe
from tasks.kube.retry import retrying

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
POOL_LABELS = (
    "pool",
    "node.kubernetes.io/pool",
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
)


class NodeVersion(BaseModel):
    """One Node as the upgrade sees it."""

    name: str
    kubelet: str
    ready: bool
    unschedulable: bool
    cordoned_by: str | None
    pool: str
    control_plane: bool


def api_server_version(target: KubeTarget) -> str:
    """The API server's gitVersion, normalised (``v1.36.3``)."""
    code = client.VersionApi(kube.api_client(target)).get_code()
    return str(parse_version(code.git_version))


def api_server_ready(target: KubeTarget) -> bool:
    return probe(kube.api_client(target), "/readyz").status == 200


def _pool(labels: dict[str, str]) -> str:
    return next((labels[k] for k in POOL_LABELS if labels.get(k)), "default")


def node_versions(target: KubeTarget, selector: str | None = None) -> list[NodeVersion]:
    """Every Node (or those matching ``selector``) with its kubelet version, by pool then name."""
    core = kube.core(target)
    listed = retrying(lambda: core.list_node(label_selector=selector or ""), "list nodes").items
    found = []
    for node in listed:
        labels = node.metadata.labels or {}
        info = node.status.node_info if node.status else None
        ready = any(
            c.type == "Ready" and c.status == "True" for c in (node.status.conditions or [])
        )
        found.append(
            NodeVersion(
                name=node.metadata.name,
                kubelet=(info.kubelet_version if info else "") or "",
                ready=ready,
                unschedulable=bool(node.spec and node.spec.unschedulable),
                cordoned_by=(node.metadata.annotations or {}).get(CORDONED_BY_ANNOTATION),
                pool=_pool(labels),
                control_plane=CONTROL_PLANE_LABEL in labels,
            )
        )
    return sorted(found, key=lambda n: (n.pool, n.name))


def control_plane_nodes(target: KubeTarget) -> list[str]:
    return [n.name for n in node_versions(target, CONTROL_PLANE_LABEL)]
