"""Whose cordon is it? The engine marks nodes it cordons with an annotation naming the run,
so a rerun finishes its own work and never uncordons a node someone else cordoned.

The annotation alone is not proof: `kubectl uncordon` leaves it behind, and a later manual
cordon would then look like ours. So the engine writes every cordon under its own field manager
(``FIELD_MANAGER``), and a cordon is ours only while the API server says that manager is the one
that set ``spec.unschedulable`` (metadata.managedFields). Any other writer flipping the field
(kubectl cordon/uncordon/patch/edit, another tool) takes that ownership, which the engine sees.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from runbooks.maintenance.facts import NodeInfo

CORDONED_BY_ANNOTATION = "kube-runbooks.io/cordoned-by"
CORDONED_AT_ANNOTATION = "kube-runbooks.io/cordoned-at"
FIELD_MANAGER = "kube-runbooks"  # the field manager of every node write the engine makes


class Cordon(StrEnum):
    NONE = "none"  # schedulable: we cordon it
    THIS_RUN = "this-run"
    EARLIER_RUN = "earlier-run"  # a run that died mid-way; the lease says it is gone: ours now
    SOMEONE_ELSE = "someone-else"  # cordoned by a person or another tool: skip, never uncordon


def set_by_engine(node: NodeInfo) -> bool:
    """The engine's field manager, and no one else, set the node's spec.unschedulable."""
    return node.unschedulable_set_by == [FIELD_MANAGER]


def cordon_owner(node: NodeInfo, run_id: str) -> Cordon:
    if not node.unschedulable:
        return Cordon.NONE
    if node.cordoned_by is None or not set_by_engine(node):
        return Cordon.SOMEONE_ELSE
    return Cordon.THIS_RUN if node.cordoned_by == run_id else Cordon.EARLIER_RUN


def stale_mark(node: NodeInfo) -> bool:
    """Our annotation on a node that is schedulable: left behind by `kubectl uncordon`."""
    return node.cordoned_by is not None and not node.unschedulable


def foreign_cordon(node: NodeInfo) -> str:
    """Why a cordon is not ours, for the report: who set it, and whether our mark is stale."""
    who = ", ".join(node.unschedulable_set_by) or "an unknown writer"
    if node.cordoned_by is None:
        return f"cordoned by someone else ({who}), not by kube-runbooks"
    return (
        f"cordoned by someone else ({who}) after kube-runbooks run {node.cordoned_by}'s "
        "cordon was lifted by hand (its mark is stale)"
    )


Release = Literal["uncordon", "clear-mark", "foreign", "nothing"]


def release_action(node: NodeInfo) -> Release:
    """What `runbook release` does to a node: give back a cordon the engine made (any run),
    clear a stale mark, leave anyone else's cordon, or nothing (schedulable, unmarked)."""
    if node.unschedulable:
        ours = node.cordoned_by is not None and set_by_engine(node)
        return "uncordon" if ours else "foreign"
    return "clear-mark" if stale_mark(node) else "nothing"


def may_uncordon(node: NodeInfo, run_id: str, adopted: set[str]) -> bool:
    """Only a cordon this run made, or one it adopted from an earlier run of the engine."""
    return cordon_owner(node, run_id) in (Cordon.THIS_RUN, Cordon.EARLIER_RUN) and (
        node.cordoned_by == run_id or node.cordoned_by in adopted
    )
