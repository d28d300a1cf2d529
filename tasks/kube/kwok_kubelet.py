"""The local cluster's node upgrade: a KWOK node reports a new kubelet version and boot ID.

KWOK simulates kubelets, so "upgrade the kubelet and reboot" is a status patch (the same one
`runbook cluster node --kubelet-version --reboot` makes). Refused on a node KWOK does not
simulate: on a real node the patch would only make its status lie.
"""

from __future__ import annotations

import uuid

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.ownership import FIELD_MANAGER
from tasks.kube import client as kube
from tasks.kube.retry import retrying

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class NotAKwokNode(RuntimeError):
    pass


def report_kubelet_version(target: KubeTarget, node: str, version: str) -> str:
    """Set ``node``'s reported kubelet version and a new boot ID (a reboot the maintenance
    engine waits for); what was done, for the report."""
    core = kube.core(target)
    current = retrying(lambda: core.read_node(node), f"read node {node}")
    annotations = current.metadata.annotations or {}
    if annotations.get(KWOK_NODE_ANNOTATION) != "fake":
        raise NotAKwokNode(
            f"node {node} is not a KWOK node (no {KWOK_NODE_ANNOTATION}=fake): the local "
            "provider upgrades only the local cluster's simulated nodes; use --provider command"
        )
    before = current.status.node_info.kubelet_version if current.status.node_info else "?"
    body = {"status": {"nodeInfo": {"kubeletVersion": version, "bootID": str(uuid.uuid4())}}}
    retrying(
        lambda: core.patch_node_status(node, body, field_manager=FIELD_MANAGER),
        f"set the kubelet version of {node}",
    )
    return f"kubelet {before} -> {version}, rebooted"
