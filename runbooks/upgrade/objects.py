"""API objects as read raw (JSON, one LIST per type) -> the maintenance planners' records.

The preflight reads Nodes, Pods and PodDisruptionBudgets once as raw JSON (like provision
verification) and hands the room and budget checks the same records the maintenance engine
plans with, so both judge a drain the same way.
"""

from __future__ import annotations

from typing import Any

from runbooks.maintenance.facts import (
    BudgetInfo,
    LabelRequirement,
    LabelSelector,
    NodeInfo,
    PodInfo,
)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def kubelet_version(node: dict[str, Any]) -> str:
    return ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or ""


def node_info(node: dict[str, Any]) -> NodeInfo:
    return NodeInfo(
        name=_meta(node).get("name", ""),
        unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
        ready=node_ready(node),
        labels=_meta(node).get("labels") or {},
    )


def pod_info(pod: dict[str, Any]) -> PodInfo:
    meta, spec = _meta(pod), pod.get("spec") or {}
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    return PodInfo(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        node=spec.get("nodeName") or "",
        phase=(pod.get("status") or {}).get("phase") or "Pending",
        labels=meta.get("labels") or {},
        controller_kind=owner.get("kind") if owner else None,
        controller_name=owner.get("name") if owner else None,
        terminating=meta.get("deletionTimestamp") is not None,
        node_selector=spec.get("nodeSelector") or {},
    )


def _selector(raw: dict[str, Any] | None) -> LabelSelector | None:
    if raw is None:
        return None
    return LabelSelector(
        match_labels=raw.get("matchLabels") or {},
        match_expressions=[
            LabelRequirement(key=e["key"], operator=e["operator"], values=e.get("values") or [])
            for e in raw.get("matchExpressions") or []
        ],
    )


def budget_info(pdb: dict[str, Any]) -> BudgetInfo:
    meta, status = _meta(pdb), pdb.get("status") or {}
    return BudgetInfo(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        selector=_selector((pdb.get("spec") or {}).get("selector")),
        disruptions_allowed=status.get("disruptionsAllowed") or 0,
        current_healthy=status.get("currentHealthy") or 0,
        desired_healthy=status.get("desiredHealthy") or 0,
        expected_pods=status.get("expectedPods") or 0,
        observed=status.get("observedGeneration") == meta.get("generation"),
    )
