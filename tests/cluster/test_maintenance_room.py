"""A batch that would leave evicted pods nowhere to go is refused before anything is cordoned,
unless the operator accepts it; checked against the real scheduler's view of the nodes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runbooks.cluster import workloads
from tests.cluster.test_maintenance_helpers import cli, node_state, pod_uids

pytestmark = pytest.mark.cluster


def _lease() -> list[str]:
    return ["--lease-name", f"maint-{uuid.uuid4().hex[:8]}", "--lease-duration", "5s"]


def _web(cluster: Any, group: Any, namespace: str) -> dict[str, str]:
    """Two pods that may run only on the group's nodes; returns their UIDs by name."""
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    return pod_uids(cluster, namespace)


def test_taking_every_node_a_workload_may_use_is_refused_and_touches_nothing(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(2)
    uids_before = _web(cluster, group, namespace)

    done = cli(
        cluster, "--selector", group.selector, "--max-unavailable", "2", "--output", "json",
        *_lease(),
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "refused"
    assert "nowhere to go" in summary["message"]
    assert f"nodes labelled {group.selector}" in summary["message"]
    assert "--evict-without-room" in summary["message"]
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    assert pod_uids(cluster, namespace) == uids_before


def test_one_node_at_a_time_has_room_and_rolls(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(2)
    _web(cluster, group, namespace)

    done = cli(cluster, "--selector", group.selector, "--max-unavailable", "1", *_lease())

    assert done.returncode == 0, done.stderr
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_evict_without_room_drains_anyway_and_the_pods_come_back_after(
    cluster: Any, node_group: Any, namespace: str
) -> None:
    group = node_group(1)
    uids_before = _web(cluster, group, namespace)

    done = cli(
        cluster, "--selector", group.selector, "--evict-without-room", "--output", "json",
        *_lease(),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded"
    assert len(summary["nodes"][0]["pods_evicted"]) == 2
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    replaced = workloads.wait_pods_ready(cluster.api, namespace, 2)  # back once it is uncordoned
    assert not {p.metadata.uid for p in replaced} & set(uids_before.values())
