"""API objects -> the plain records the planners use (runbooks.maintenance.facts)."""

from __future__ import annotations

from kubernetes import client

from runbooks.maintenance.facts import (
    BudgetInfo,
    LabelRequirement,
    LabelSelector,
    NodeInfo,
    PodInfo,
)
from runbooks.maintenance.ownership import CORDONED_BY_ANNOTATION

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def node_info(node: client.V1Node) -> NodeInfo:
    ready = False
    for condition in (node.status.conditions or []) if node.status else []:
        if condition.type == "Ready":
            ready = condition.status == "True"
    info = node.status.node_info if node.status else None
    return NodeInfo(
        name=node.metadata.name,
        unschedulable=bool(node.spec and node.spec.unschedulable),
        ready=ready,
        boot_id=(info.boot_id if info else "") or "",
        cordoned_by=(node.metadata.annotations or {}).get(CORDONED_BY_ANNOTATION),
        unschedulable_set_by=unschedulable_set_by(node),
        resource_version=node.metadata.resource_version or "",
        labels=node.metadata.labels or {},
    )


def unschedulable_set_by(node: client.V1Node) -> list[str]:
    """The field managers the API server records as owners of spec.unschedulable (sorted).
    A write that changes the field moves its ownership to the writer, so a cordon lifted and set
    again by hand is owned by kubectl, not by us. Status writes (kubelets) never own it."""
    owners = {
        entry.manager or ""
        for entry in node.metadata.managed_fields or []
        if not entry.subresource
        and "f:unschedulable" in ((entry.fields_v1 or {}).get("f:spec") or {})
    }
    return sorted(owners)


def pod_info(pod: client.V1Pod) -> PodInfo:
    controller = next((o for o in pod.metadata.owner_references or [] if o.controller), None)
    return PodInfo(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        node=pod.spec.node_name or "",
        phase=(pod.status.phase if pod.status else None) or "Pending",
        labels=pod.metadata.labels or {},
        controller_kind=controller.kind if controller else None,
        controller_name=controller.name if controller else None,
        mirror=MIRROR_ANNOTATION in (pod.metadata.annotations or {}),
        terminating=pod.metadata.deletion_timestamp is not None,
        deletion_due=pod.metadata.deletion_timestamp,
        empty_dir_volumes=[v.name for v in pod.spec.volumes or [] if v.empty_dir is not None],
        node_selector=pod.spec.node_selector or {},
    )


def label_selector(selector: client.V1LabelSelector | None) -> LabelSelector | None:
    if selector is None:
        return None
    return LabelSelector(
        match_labels=selector.match_labels or {},
        match_expressions=[
            LabelRequirement(key=e.key, operator=e.operator, values=e.values or [])
            for e in selector.match_expressions or []
        ],
    )


def budget_info(pdb: client.V1PodDisruptionBudget) -> BudgetInfo:
    status = pdb.status
    return BudgetInfo(
        namespace=pdb.metadata.namespace,
        name=pdb.metadata.name,
        selector=label_selector(pdb.spec.selector if pdb.spec else None),
        disruptions_allowed=(status.disruptions_allowed if status else 0) or 0,
        current_healthy=(status.current_healthy if status else 0) or 0,
        desired_healthy=(status.desired_healthy if status else 0) or 0,
        expected_pods=(status.expected_pods if status else 0) or 0,
        observed=bool(status and status.observed_generation == pdb.metadata.generation),
    )
