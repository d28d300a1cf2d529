"""Which pods a drain evicts, leaves or refuses: kubectl drain's filters, as a pure function.

Order and meaning follow ``k8s.io/kubectl/pkg/drain/filters.go``: terminating pods are only
waited for; completed pods are ignored; DaemonSet and mirror pods are left in place; pods with
emptyDir data or without a controller are refused unless the flag that accepts the loss is set.
One addition of ours: the pod of a maintenance Job this engine started (the `job` action) is left
in place, because evicting it would kill a patch or reboot half-way; a rerun then finds that Job
still active and stops at the node instead of starting a second one.
A refusal names the pod and the flag, and comes from the plan, before anything is cordoned.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runbooks.maintenance.facts import BudgetInfo, PodInfo, PodRef
from runbooks.maintenance.job_manifest import MANAGED_BY, MANAGED_BY_LABEL


class DrainOptions(BaseModel):
    delete_emptydir_data: bool = False
    force: bool = False
    ignore_daemonsets: bool = True
    # kubectl drain's --skip-wait-for-delete-timeout: stop waiting for a pod whose deletion
    # was due this many seconds ago (its node's kubelet is not answering); 0 waits for all.
    skip_wait_for_delete_timeout: int = 0


class PodDecision(BaseModel):
    pod: PodRef
    reason: str


class BudgetBlock(BaseModel):
    """A budget that would refuse (some of) this node's evictions right now."""

    budget: BudgetInfo
    pods: list[PodRef]

    def describe(self) -> str:
        return f"{self.budget.describe()}; {len(self.pods)} pod(s) on this node"


class DrainPlan(BaseModel):
    node: str
    evict: list[PodRef] = Field(default_factory=list)
    wait_for: list[PodRef] = Field(default_factory=list)  # already terminating
    left: list[PodDecision] = Field(default_factory=list)  # DaemonSet, mirror, completed
    refused: list[PodDecision] = Field(default_factory=list)
    blocking_budgets: list[BudgetBlock] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def plan_drain(
    node: str,
    pods: list[PodInfo],
    options: DrainOptions,
    daemonsets: set[str] | None = None,
    budgets: list[BudgetInfo] | None = None,
) -> DrainPlan:
    """Decide for every pod on ``node``. ``daemonsets`` holds "namespace/name" of existing
    DaemonSets (a DaemonSet pod whose DaemonSet is gone is an orphan, deleted only with force);
    ``None`` means unknown, and every DaemonSet pod is treated as managed."""
    plan = DrainPlan(node=node)
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if pod.terminating:
            plan.wait_for.append(pod.ref)
            continue
        if pod.completed:
            plan.left.append(PodDecision(pod=pod.ref, reason=f"completed ({pod.phase})"))
            continue
        if pod.mirror:
            plan.left.append(
                PodDecision(pod=pod.ref, reason="mirror pod (static, kubelet-managed)")
            )
            continue
        if pod.controller_kind == "Job" and pod.labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
            plan.left.append(
                PodDecision(
                    pod=pod.ref,
                    reason=f"maintenance Job pod of kube-runbooks ({pod.controller_name}), "
                    "evicting it would interrupt the maintenance",
                )
            )
            continue
        if pod.controller_kind == "DaemonSet":
            owner = f"{pod.namespace}/{pod.controller_name}"
            orphan = daemonsets is not None and owner not in daemonsets
            if not orphan:
                if options.ignore_daemonsets:
                    plan.left.append(
                        PodDecision(pod=pod.ref, reason=f"DaemonSet pod ({pod.controller_name})")
                    )
                else:
                    plan.refused.append(
                        PodDecision(
                            pod=pod.ref,
                            reason=f"managed by DaemonSet {pod.controller_name}, which ignores "
                            "the cordon (allow leaving it with --ignore-daemonsets)",
                        )
                    )
                continue
        reasons = _loss_reasons(pod, options, orphan_daemonset=pod.controller_kind == "DaemonSet")
        if reasons:
            plan.refused.append(PodDecision(pod=pod.ref, reason="; ".join(reasons)))
        else:
            plan.evict.append(pod.ref)
    if budgets is not None:
        to_evict = set(plan.evict)
        plan.blocking_budgets = blocking_budgets([p for p in pods if p.ref in to_evict], budgets)
    return plan


def _loss_reasons(pod: PodInfo, options: DrainOptions, orphan_daemonset: bool) -> list[str]:
    reasons = []
    if pod.empty_dir_volumes and not options.delete_emptydir_data:
        vols = ", ".join(pod.empty_dir_volumes)
        reasons.append(f"uses emptyDir ({vols}), data is lost (allow with --delete-emptydir-data)")
    if orphan_daemonset and not options.force:
        reasons.append(
            f"DaemonSet {pod.controller_name} no longer exists, the pod is deleted for good "
            "(allow with --force)"
        )
    elif pod.controller_kind is None and not options.force:
        reasons.append("no controller, the pod is deleted for good (allow with --force)")
    return reasons


def blocking_budgets(pods: list[PodInfo], budgets: list[BudgetInfo]) -> list[BudgetBlock]:
    """Budgets that allow fewer disruptions than this node needs now (or are not yet observed).

    A budget with 1 disruption allowed and 3 of its pods on the node still drains, but only as
    replacements become healthy: it is reported, because it is where a drain waits.
    """
    blocks = []
    for budget in sorted(budgets, key=lambda b: (b.namespace, b.name)):
        covered = [p.ref for p in pods if budget.covers(p)]
        if covered and (not budget.observed or budget.disruptions_allowed < len(covered)):
            blocks.append(BudgetBlock(budget=budget, pods=covered))
    return blocks
