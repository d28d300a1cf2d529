"""Which pods a drain evicts, leaves or refuses: kubectl drain's filters, row by row."""

from __future__ import annotations

import pytest

from runbooks.maintenance.drain_plan import DrainOptions, PodDecision, plan_drain
from runbooks.maintenance.facts import BudgetInfo, LabelRequirement, LabelSelector, PodInfo, PodRef


def pod(name: str, **kw: object) -> PodInfo:
    base: dict[str, object] = {
        "namespace": "shop",
        "name": name,
        "uid": f"uid-{name}",
        "node": "worker-1",
        "controller_kind": "ReplicaSet",
        "controller_name": "web-abc",
        "labels": {"app": "web"},
    }
    base.update(kw)
    return PodInfo.model_validate(base)


DEFAULTS = DrainOptions()
ALLOW_ALL = DrainOptions(delete_emptydir_data=True, force=True)
DS = {"shop/agent"}

# (case, pod, options, expected verdict: evict | left | refused | wait, reason fragment)
CASES = [
    ("replicaset pod is evicted", pod("web-1"), DEFAULTS, "evict", ""),
    (
        "the engine's own maintenance job pod is left, never evicted mid-maintenance",
        pod(
            "maint-worker-1-0123456789abcdef-x",
            controller_kind="Job",
            controller_name="maint-worker-1-0123456789abcdef",
            labels={"app.kubernetes.io/managed-by": "kube-runbooks"},
        ),
        DEFAULTS,
        "left",
        "maintenance Job pod of kube-runbooks",
    ),
    (
        "another job's pod is evicted as kubectl would",
        pod("report-x", controller_kind="Job", controller_name="report", labels={}),
        DEFAULTS,
        "evict",
        "",
    ),
    (
        "statefulset pod is evicted",
        pod("db-0", controller_kind="StatefulSet"),
        DEFAULTS,
        "evict",
        "",
    ),
    (
        "daemonset pod is left",
        pod("agent-x", controller_kind="DaemonSet", controller_name="agent"),
        DEFAULTS,
        "left",
        "DaemonSet",
    ),
    (
        "daemonset pod refuses without ignore-daemonsets",
        pod("agent-x", controller_kind="DaemonSet", controller_name="agent"),
        DrainOptions(ignore_daemonsets=False),
        "refused",
        "--ignore-daemonsets",
    ),
    (
        "orphaned daemonset pod refused without force",
        pod("old-x", controller_kind="DaemonSet", controller_name="gone"),
        DEFAULTS,
        "refused",
        "no longer exists",
    ),
    (
        "orphaned daemonset pod evicted with force",
        pod("old-x", controller_kind="DaemonSet", controller_name="gone"),
        ALLOW_ALL,
        "evict",
        "",
    ),
    (
        "mirror pod is left",
        pod("etcd-w1", mirror=True, controller_kind="Node"),
        DEFAULTS,
        "left",
        "mirror",
    ),
    (
        "completed pod is ignored",
        pod("job-1", phase="Succeeded", controller_kind="Job"),
        DEFAULTS,
        "left",
        "completed",
    ),
    (
        "failed pod is ignored",
        pod("job-2", phase="Failed", controller_kind=None),
        DEFAULTS,
        "left",
        "completed",
    ),
    (
        "completed pod with emptyDir is ignored",
        pod("job-3", phase="Succeeded", empty_dir_volumes=["scratch"]),
        DEFAULTS,
        "left",
        "completed",
    ),
    (
        "terminating pod is waited for, not evicted",
        pod("web-2", terminating=True),
        DEFAULTS,
        "wait",
        "",
    ),
    (
        "emptyDir pod refused by name",
        pod("cache-1", empty_dir_volumes=["scratch"]),
        DEFAULTS,
        "refused",
        "--delete-emptydir-data",
    ),
    (
        "emptyDir pod evicted with the flag",
        pod("cache-1", empty_dir_volumes=["scratch"]),
        DrainOptions(delete_emptydir_data=True),
        "evict",
        "",
    ),
    (
        "bare pod refused",
        pod("debug", controller_kind=None, controller_name=None),
        DEFAULTS,
        "refused",
        "--force",
    ),
    (
        "bare pod evicted with force",
        pod("debug", controller_kind=None),
        DrainOptions(force=True),
        "evict",
        "",
    ),
    (
        "bare pod with emptyDir needs both flags",
        pod("scratchpad", controller_kind=None, empty_dir_volumes=["tmp"]),
        DrainOptions(force=True),
        "refused",
        "--delete-emptydir-data",
    ),
    (
        "bare pod with emptyDir evicted with both flags",
        pod("scratchpad", controller_kind=None, empty_dir_volumes=["tmp"]),
        ALLOW_ALL,
        "evict",
        "",
    ),
]


@pytest.mark.parametrize(
    ("case", "p", "options", "verdict", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_drain_plan_decides_each_pod_like_kubectl_drain(case, p, options, verdict, reason):
    plan = plan_drain("worker-1", [p], options, daemonsets=DS)

    found: dict[str, list[PodRef] | list[PodDecision]] = {
        "evict": [x for x in plan.evict if x.name == p.name],
        "left": [d for d in plan.left if d.pod.name == p.name],
        "refused": [d for d in plan.refused if d.pod.name == p.name],
        "wait": [x for x in plan.wait_for if x.name == p.name],
    }
    assert [k for k, v in found.items() if v] == [verdict], case
    if reason:
        decision = found[verdict][0]
        assert isinstance(decision, PodDecision), f"{verdict} pods carry no reason"
        assert reason in decision.reason


def test_refusals_name_every_pod_and_the_plan_is_not_ok():
    pods = [pod("a", controller_kind=None), pod("b", empty_dir_volumes=["x"]), pod("c")]

    plan = plan_drain("worker-1", pods, DEFAULTS, daemonsets=DS)

    assert not plan.ok
    assert sorted(d.pod.name for d in plan.refused) == ["a", "b"]
    assert [p.name for p in plan.evict] == ["c"]


def test_unknown_daemonsets_are_treated_as_managed():
    p = pod("agent-x", controller_kind="DaemonSet", controller_name="whatever")
    assert plan_drain("worker-1", [p], DEFAULTS, daemonsets=None).left


def budget(name: str, allowed: int, app: str = "web", observed: bool = True) -> BudgetInfo:
    return BudgetInfo(
        namespace="shop",
        name=name,
        selector=LabelSelector(match_labels={"app": app}),
        disruptions_allowed=allowed,
        current_healthy=3,
        desired_healthy=3,
        expected_pods=3,
        observed=observed,
    )


@pytest.mark.parametrize(
    ("pods_on_node", "budget_info", "blocks"),
    [
        (1, budget("web-pdb", allowed=0), True),
        (1, budget("web-pdb", allowed=1), False),
        (2, budget("web-pdb", allowed=1), True),  # second eviction waits for a replacement
        (1, budget("web-pdb", allowed=5, observed=False), True),  # not yet processed: 429
        (1, budget("other-pdb", allowed=0, app="other"), False),  # selects other pods
    ],
)
def test_budgets_that_would_block_now_are_named(pods_on_node, budget_info, blocks):
    pods = [pod(f"web-{i}") for i in range(pods_on_node)]

    plan = plan_drain("worker-1", pods, DEFAULTS, daemonsets=DS, budgets=[budget_info])

    assert bool(plan.blocking_budgets) == blocks
    if blocks:
        assert "PodDisruptionBudget shop/" in plan.blocking_budgets[0].describe()


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (LabelSelector(), {"a": "1"}, True),
        (LabelSelector(match_labels={"a": "1"}), {"a": "1", "b": "2"}, True),
        (LabelSelector(match_labels={"a": "1"}), {"a": "2"}, False),
        (
            LabelSelector(
                match_expressions=[LabelRequirement(key="a", operator="In", values=["1", "2"])]
            ),
            {"a": "2"},
            True,
        ),
        (
            LabelSelector(
                match_expressions=[LabelRequirement(key="a", operator="NotIn", values=["1"])]
            ),
            {"a": "1"},
            False,
        ),
        (
            LabelSelector(
                match_expressions=[LabelRequirement(key="a", operator="NotIn", values=["1"])]
            ),
            {},
            True,
        ),
        (
            LabelSelector(match_expressions=[LabelRequirement(key="a", operator="Exists")]),
            {},
            False,
        ),
        (
            LabelSelector(match_expressions=[LabelRequirement(key="a", operator="DoesNotExist")]),
            {},
            True,
        ),
    ],
)
def test_budget_selectors_follow_kubernetes_label_semantics(selector, labels, matches):
    assert selector.matches(labels) is matches


def test_budget_description_has_the_numbers_an_operator_needs():
    b = BudgetInfo(
        namespace="payments",
        name="api-pdb",
        disruptions_allowed=0,
        current_healthy=3,
        desired_healthy=3,
        expected_pods=3,
    )
    assert b.describe() == (
        "PodDisruptionBudget payments/api-pdb (0 disruptions allowed, 3/3 healthy, needs 3)"
    )
