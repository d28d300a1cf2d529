"""A plan that would leave evicted pods nowhere to go is refused before anything is cordoned."""

from __future__ import annotations

from runbooks.maintenance.facts import NodeInfo, PodInfo
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.plan import MaintenancePlan, build_plan
from runbooks.maintenance.room import find_no_room

RUN = "run-room"
POOL = {"pool": "blue"}


def pod(node: str, name: str, kind: str | None = "ReplicaSet", **kw: object) -> PodInfo:
    return PodInfo.model_validate(
        {
            "namespace": "shop",
            "name": name,
            "uid": f"uid-{name}",
            "node": node,
            "controller_kind": kind,
            "controller_name": "web-1" if kind else None,
            **kw,
        }
    )


def node(name: str, **kw: object) -> NodeInfo:
    return NodeInfo.model_validate({"name": name, "labels": POOL, **kw})


def plan(
    selected: list[NodeInfo],
    pods: dict[str, list[PodInfo]],
    cluster: list[NodeInfo] | None,
    **params: object,
) -> MaintenancePlan:
    request = MaintenanceParams.model_validate(
        {"nodes": [n.name for n in selected], "force": True, **params}
    )
    return build_plan(request, selected, pods, set(), [], RUN, cluster_nodes=cluster)


def test_a_batch_of_every_node_leaves_the_pods_no_home_and_is_refused():
    a, b = node("a"), node("b")
    pods = {"a": [pod("a", "web-1")], "b": [pod("b", "web-2")]}

    result = plan([a, b], pods, [a, b], max_unavailable="100%")

    assert result.batches == [["a", "b"]]
    assert result.refuses_for_room
    [room] = result.no_room
    assert room.pods == ["shop/web-1", "shop/web-2"]
    text = result.to_markdown()
    assert "No room for evicted pods" in text and "nothing will be cordoned" in text
    assert "shop/web-1" in text


def test_one_node_at_a_time_leaves_room_on_the_others():
    a, b = node("a"), node("b")
    pods = {"a": [pod("a", "web-1")], "b": [pod("b", "web-2")]}

    result = plan([a, b], pods, [a, b], max_unavailable="1")

    assert result.no_room == []
    assert not result.refuses_for_room


def test_a_node_outside_the_selection_is_a_home():
    a, spare = node("a"), node("spare")

    result = plan([a], {"a": [pod("a", "web-1")]}, [a, spare])

    assert result.no_room == []


def test_cordoned_or_notready_nodes_are_no_home():
    a = node("a")
    cluster = [a, node("cordoned", unschedulable=True), node("down", ready=False)]

    result = plan([a], {"a": [pod("a", "web-1")]}, cluster)

    assert [r.pods for r in result.no_room] == [["shop/web-1"]]


def test_the_pods_node_selector_decides_which_nodes_are_homes():
    a = node("a")
    other_pool = NodeInfo(name="green-1", labels={"pool": "green"})
    pinned = pod("a", "web-1", node_selector={"pool": "blue"})
    anywhere = pod("a", "web-2")

    result = plan([a], {"a": [pinned, anywhere]}, [a, other_pool])

    [room] = result.no_room
    assert room.node_selector == {"pool": "blue"} and room.pods == ["shop/web-1"]
    assert "nodes labelled pool=blue" in room.describe()


def test_bare_pods_and_daemonset_pods_need_no_home():
    a = node("a")
    pods = {"a": [pod("a", "bare", kind=None), pod("a", "agent", kind="DaemonSet")]}

    result = plan([a], pods, [a])

    assert result.no_room == []


def test_evict_without_room_plans_it_and_says_it_was_accepted():
    a = node("a")

    result = plan([a], {"a": [pod("a", "web-1")]}, [a], evict_without_room=True)

    assert result.no_room and not result.refuses_for_room
    assert "accepted: they stay Pending" in result.to_markdown()


def test_unknown_cluster_is_not_checked():
    a = node("a")
    assert plan([a], {"a": [pod("a", "web-1")]}, None).no_room == []


def test_each_batch_is_checked_on_its_own():
    names = ["a", "b", "c", "d"]
    cluster = [node(n) for n in names]
    evicted = {n: [pod(n, f"web-{n}")] for n in names}

    assert find_no_room([["a", "b"], ["c", "d"]], evicted, cluster) == []
    [room] = find_no_room([["a", "b", "c", "d"]], evicted, cluster)
    assert room.batch == 1 and len(room.pods) == 4
