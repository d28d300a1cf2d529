"""Whose cordon is it? The engine marks nodes it cordons with an annotation naming the run,
so a rerun finishes its own work and never uncordons a node someone else cordoned."""

from __future__ import annotations

from enum import StrEnum

from runbooks.maintenance.facts import NodeInfo

CORDONED_BY_ANNOTATION = "kube-runbooks.io/cordoned-by"
CORDONED_AT_ANNOTATION = "kube-runbooks.io/cordoned-at"


class Cordon(StrEnum):
    NONE = "none"  # schedulable: we cordon it
    THIS_RUN = "this-run"
    EARLIER_RUN = "earlier-run"  # a run that died mid-way; the lease says it is gone: ours now
    SOMEONE_ELSE = "someone-else"  # cordoned by a person or another tool: skip, never uncordon


def cordon_owner(node: NodeInfo, run_id: str) -> Cordon:
    if not node.unschedulable:
        return Cordon.NONE
    if node.cordoned_by is None:
        return Cordon.SOMEONE_ELSE
    return Cordon.THIS_RUN if node.cordoned_by == run_id else Cordon.EARLIER_RUN


def may_uncordon(node: NodeInfo, run_id: str, adopted: set[str]) -> bool:
    """Only a cordon this run made, or one it adopted from an earlier run of the engine."""
    return node.cordoned_by is not None and (
        node.cordoned_by == run_id or node.cordoned_by in adopted
    )
