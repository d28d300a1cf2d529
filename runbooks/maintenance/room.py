"""Whether the pods a batch evicts have somewhere to go.

kubectl drain evicts whatever it is told to. With max-unavailable (or a node selection) covering
every node a workload may run on, its replacements stay Pending (an outage that lasts until a
node comes back), or its budget refuses every eviction until the drain timeout. The plan checks
before anything is cordoned: each pod a controller will recreate needs at least one node outside
its batch that is Ready, schedulable and matches the pod's nodeSelector.

Taints, affinity and free capacity are not modelled: this finds the certain failures, not every
possible one.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel

from runbooks.maintenance.facts import NodeInfo, PodInfo


class NoRoom(BaseModel):
    """Pods of one batch, with one nodeSelector, that no node outside the batch could take."""

    batch: int  # 1-based, as the plan numbers batches
    nodes: list[str]
    node_selector: dict[str, str]
    pods: list[str]

    def describe(self) -> str:
        wanted = (
            "nodes labelled " + ",".join(f"{k}={v}" for k, v in sorted(self.node_selector.items()))
            if self.node_selector
            else "any node"
        )
        shown = ", ".join(self.pods[:5]) + (
            f" and {len(self.pods) - 5} more" if len(self.pods) > 5 else ""
        )
        return (
            f"batch {self.batch} ({', '.join(self.nodes)}) would leave {len(self.pods)} "
            f"pod(s) with nowhere to go ({shown}): they need {wanted}, and every such node is "
            "in the batch, cordoned or NotReady"
        )


def needs_a_home(pod: PodInfo) -> bool:
    """A controller recreates it elsewhere; a bare pod evicted with --force is simply gone,
    and DaemonSet pods are never evicted to move."""
    return pod.controller_kind is not None and pod.controller_kind != "DaemonSet"


def could_host(node: NodeInfo, selector: dict[str, str]) -> bool:
    return (
        node.ready
        and not node.unschedulable
        and all(node.labels.get(k) == v for k, v in selector.items())
    )


def find_no_room(
    batches: list[list[str]], evicted: dict[str, list[PodInfo]], cluster: list[NodeInfo]
) -> list[NoRoom]:
    """For each batch, the pods (by nodeSelector) that no node outside it could take.
    ``evicted``: the pods the plan evicts, by node; ``cluster``: every node of the cluster."""
    found: list[NoRoom] = []
    for number, batch in enumerate(batches, 1):
        members = set(batch)
        outside = [n for n in cluster if n.name not in members]
        by_selector: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
        for node in batch:
            for pod in evicted.get(node, []):
                if needs_a_home(pod):
                    by_selector[tuple(sorted(pod.node_selector.items()))].append(
                        f"{pod.namespace}/{pod.name}"
                    )
        for selector, pods in sorted(by_selector.items()):
            wanted = dict(selector)
            if not any(could_host(n, wanted) for n in outside):
                found.append(NoRoom(batch=number, nodes=batch, node_selector=wanted, pods=pods))
    return found
