"""The upgrade plan, from what was read: what is left to do, in which order, and its refusals."""

from __future__ import annotations

import pytest

from runbooks.maintenance.params import InvalidRequest
from runbooks.upgrade.params import UpgradeParams
from runbooks.upgrade.plan import NodeFacts, at_target_checks, plan_upgrade

TO = UpgradeParams(to="v1.36.3", approval="none")


def node(name: str, kubelet: str = "v1.35.4", pool: str = "default", **kw: object) -> NodeFacts:
    return NodeFacts.model_validate({"name": name, "kubelet": kubelet, "pool": pool, **kw})


def test_nodes_are_upgraded_pool_by_pool_and_control_plane_nodes_are_not_in_the_node_phase() -> (
    None
):
    plan = plan_upgrade(
        TO,
        "local",
        "v1.35.4",
        [
            node("b-1", pool="b"),
            node("a-2", pool="a"),
            node("cp", control_plane=True),
            node("a-1", pool="a"),
        ],
    )
    assert [pool for pool, _ in plan.pools] == ["b", "a"]  # as read: node_versions sorts by pool
    assert plan.to_upgrade == ["b-1", "a-2", "a-1"]
    assert not plan.control_plane_done
    assert (
        "Rollback limits" in plan.to_markdown() and "etcd is not downgraded" in plan.to_markdown()
    )


def test_a_rerun_skips_the_control_plane_and_nodes_already_at_the_target() -> None:
    plan = plan_upgrade(TO, "local", "v1.36.3", [node("w1", "v1.36.3"), node("w2")])
    assert plan.control_plane_done
    assert plan.to_upgrade == ["w2"]


def test_a_node_at_the_target_but_still_cordoned_by_the_engine_is_finished_by_the_rerun() -> None:
    left = node("w1", "v1.36.3", unschedulable=True, cordoned_by="run-1")
    assert plan_upgrade(TO, "local", "v1.36.3", [left]).to_upgrade == ["w1"]


@pytest.mark.parametrize(
    ("server", "nodes", "message"),
    [
        ("v1.36.4", [node("w1")], "lower than the API server's v1.36.4"),
        ("v1.35.4", [], "no worker node"),
        ("v1.35.4", [node("cp", control_plane=True)], "no worker node"),
    ],
)
def test_plan_time_refusals_name_what_was_found(
    server: str, nodes: list[NodeFacts], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        plan_upgrade(TO, "local", server, nodes)


def test_the_digest_changes_with_what_the_approver_would_sign() -> None:
    one = plan_upgrade(TO, "local", "v1.35.4", [node("w1")])
    other = plan_upgrade(TO, "local", "v1.35.4", [node("w1"), node("w2")])
    assert one.digest() != other.digest()
    assert one.digest() == plan_upgrade(TO, "local", "v1.35.4", [node("w1")]).digest()


def test_verification_fails_for_a_node_behind_or_not_ready_and_a_server_behind() -> None:
    checks = at_target_checks(
        "v1.36.3",
        "v1.35.4",
        [node("w1", "v1.36.3", ready=False), node("w2"), node("w3", "v1.36.3")],
    )
    by_id = {c.id: c for c in checks}
    assert by_id["upgrade.api-server"].blocks
    assert by_id["upgrade.nodes"].evidence == [
        "w1: kubelet v1.36.3, NotReady",
        "w2: kubelet v1.35.4",
    ]
    done = at_target_checks("v1.36.3", "v1.36.3", [node("w3", "v1.36.3")])
    assert not any(c.blocks for c in done)
