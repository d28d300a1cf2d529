"""The plan an operator (or an approver) reads before anything changes."""

from __future__ import annotations

import json

from runbooks.maintenance.facts import BudgetInfo, LabelSelector, NodeInfo, PodInfo
from runbooks.maintenance.ownership import FIELD_MANAGER, Cordon, cordon_owner, may_uncordon
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.plan import build_plan, select_nodes

RUN = "run-b"
BY_US = {"unschedulable_set_by": [FIELD_MANAGER]}  # the engine's cordon, as managedFields say


def web(node: str, i: int) -> PodInfo:
    return PodInfo(
        namespace="shop",
        name=f"web-{i}",
        uid=f"u{i}",
        node=node,
        controller_kind="ReplicaSet",
        controller_name="web-1",
        labels={"app": "web"},
    )


def nodes(*specs: tuple[str, dict]) -> list[NodeInfo]:
    return [NodeInfo(name=n, **kw) for n, kw in specs]


def plan_for(node_list, pods=None, budgets=None, **params):
    p = MaintenanceParams(nodes=[n.name for n in node_list], **params)
    return build_plan(p, node_list, pods or {}, set(), budgets or [], RUN)


def test_someone_elses_cordon_is_skipped_and_counts_as_out():
    plan = plan_for(
        nodes(("a", {}), ("b", {"unschedulable": True}), ("c", {})), max_unavailable="2"
    )

    assert plan.order == ["a", "c"]
    assert plan.skipped[0].node == "b" and "someone else" in (plan.skipped[0].skip_reason or "")
    assert plan.out_now == ["b"]
    assert plan.batches == [["a"], ["c"]]


def test_a_node_left_cordoned_by_an_earlier_run_is_resumed_first():
    plan = plan_for(
        nodes(("a", {}), ("b", {"unschedulable": True, "cordoned_by": "run-a", **BY_US})),
    )
    assert plan.node("b").cordon == Cordon.EARLIER_RUN
    assert plan.batches == [["b"], ["a"]]
    assert "resumes run run-a" in plan.to_markdown()


def test_no_room_under_max_unavailable_is_said_plainly():
    plan = plan_for(nodes(("a", {}), ("b", {"ready": False})))  # b NotReady, limit 1, b is ours
    assert plan.batches == [["b"], ["a"]]
    stuck = plan_for(nodes(("a", {}), ("x", {"unschedulable": True})))
    assert stuck.stuck
    assert "No batch can start" in stuck.to_markdown()


def test_refusals_are_listed_by_node_and_pod_before_anything_is_cordoned():
    bare = PodInfo(namespace="dev", name="debug", uid="u9", node="a")
    plan = plan_for(nodes(("a", {}), ("b", {})), pods={"a": [bare, web("a", 1)]})

    assert [(r.node, r.pod) for r in plan.refusals] == [("a", "dev/debug")]
    assert "--force" in plan.refusals[0].reason
    assert "dev/debug" in plan.to_markdown()


def test_plan_markdown_shows_batches_evictions_and_blocking_budgets():
    pdb = BudgetInfo(
        namespace="shop",
        name="web-pdb",
        selector=LabelSelector(match_labels={"app": "web"}),
        disruptions_allowed=0,
        current_healthy=2,
        desired_healthy=2,
        expected_pods=2,
    )
    plan = plan_for(
        nodes(("a", {}), ("b", {})), pods={"a": [web("a", 1)]}, budgets=[pdb], max_unavailable="2"
    )
    md = plan.to_markdown()

    assert "1. a, b" in md
    assert "shop/web-1" in md
    assert "PodDisruptionBudget shop/web-pdb (0 disruptions allowed, 2/2 healthy, needs 2)" in md


def test_plan_digest_is_stable_and_changes_with_the_plan():
    a = plan_for(nodes(("a", {}), ("b", {})), pods={"a": [web("a", 1)]})
    same = plan_for(nodes(("a", {}), ("b", {})), pods={"a": [web("a", 1)]})
    other = plan_for(nodes(("a", {}), ("b", {})), pods={"a": [web("a", 2)]})

    assert a.digest() == same.digest()
    assert a.digest() != other.digest()
    assert len(a.digest()) == 64
    assert json.loads(a.model_dump_json())["batches"] == [["a"], ["b"]]


def test_selection_is_named_nodes_then_selector_matches_without_duplicates():
    assert select_nodes(["c", "a"], ["b", "a", "d"]) == ["c", "a", "b", "d"]


def test_only_our_own_cordons_may_be_uncordoned():
    ours = NodeInfo(name="a", unschedulable=True, cordoned_by=RUN, **BY_US)
    earlier = NodeInfo(name="b", unschedulable=True, cordoned_by="run-a", **BY_US)
    theirs = NodeInfo(name="c", unschedulable=True)
    assert cordon_owner(ours, RUN) == Cordon.THIS_RUN
    assert cordon_owner(earlier, RUN) == Cordon.EARLIER_RUN
    assert cordon_owner(theirs, RUN) == Cordon.SOMEONE_ELSE
    assert cordon_owner(NodeInfo(name="d"), RUN) == Cordon.NONE
    assert may_uncordon(ours, RUN, set())
    assert may_uncordon(earlier, RUN, {"run-a"}) and not may_uncordon(earlier, RUN, set())
    assert not may_uncordon(theirs, RUN, {"run-a"})
