"""Whose cordon is it? After a halt, people lift and set cordons by hand: the engine must never
take a later manual cordon for its own, and `runbook release` gives back only what it cordoned."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from flows.rolling_maintenance import run_local
from runbooks.audit import RecordFilter, get_store
from runbooks.cluster import workloads
from runbooks.maintenance.ownership import CORDONED_BY_ANNOTATION
from runbooks.maintenance.report import MaintenanceReport
from tests.cluster.test_maintenance_helpers import (
    RUNBOOK,
    node_state,
    params,
    pods_on,
    wait_for,
)

pytestmark = pytest.mark.cluster


def _halt_leaving_node_cordoned(cluster, group, namespace) -> tuple[str, MaintenanceReport]:
    """A budget blocks the drain of the node its one pod runs on; the run halts and leaves that
    node cordoned (marked as the run's). Returns the node and the report."""
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    node = pod.spec.node_name
    report = run_local(
        params(
            cluster,
            group,
            nodes=[node],
            selector=None,
            drain_timeout="3s",
            on_drain_failure="leave-cordoned",
        )
    )
    assert report.status == "halted", report.message
    assert node_state(cluster, [node])[node] == (True, report.run_id)
    return node, report


def _free_budget(cluster, namespace) -> None:
    cluster.policy.patch_namespaced_pod_disruption_budget(
        "api-pdb", namespace, {"spec": {"minAvailable": 0}}
    )
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")


def _by_hand(cluster, node: str, unschedulable: bool) -> None:
    """What `kubectl uncordon` / `kubectl cordon` do: spec.unschedulable only, annotations kept,
    written by a client that is not the engine."""
    cluster.core.patch_node(node, {"spec": {"unschedulable": unschedulable}})


def _release(cluster, *args: str, lease: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    lease = lease or f"maint-{uuid.uuid4().hex[:8]}"
    kube = ["--kubeconfig", str(cluster.kubeconfig)]
    return subprocess.run(
        [RUNBOOK, "release", *kube, "--lease-name", lease, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_manual_cordon_after_a_manual_uncordon_is_not_taken_for_the_engines_own(
    cluster, node_group, namespace
):
    group = node_group(2)
    node, halted = _halt_leaving_node_cordoned(cluster, group, namespace)
    _by_hand(cluster, node, False)  # `kubectl uncordon`: our annotation stays behind
    _by_hand(cluster, node, True)  # later, someone cordons it for their own reasons
    _free_budget(cluster, namespace)  # nothing would stop a drain now
    pods_before = {p.metadata.uid for p in pods_on(cluster, namespace, node)}

    again = run_local(params(cluster, group, nodes=[node], selector=None))

    result = again.result(node)
    assert result is not None
    assert result.result == "skipped", again.to_text()
    assert "cordoned by someone else" in " ".join(result.notes)
    assert not result.pods_evicted
    assert {p.metadata.uid for p in pods_on(cluster, namespace, node)} == pods_before  # not drained
    assert cluster.core.read_node(node).spec.unschedulable  # still cordoned: not uncordoned
    actions = {r.action for r in get_store().records(RecordFilter(target=node))}
    assert "node.adopt-cordon" not in actions and halted.run_id != again.run_id


def test_stale_mark_is_cleared_when_the_engine_finds_the_node_schedulable(
    cluster, node_group, namespace
):
    group = node_group(3)
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    blocked = pod.spec.node_name
    stale = next(n for n in group.names if n != blocked)
    # a mark left by an earlier run whose cordon someone lifted with `kubectl uncordon`
    cluster.core.patch_node(
        stale, {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: "local-0123456789ab"}}}
    )

    report = run_local(
        params(cluster, group, nodes=[blocked, stale], selector=None, drain_timeout="3s")
    )

    assert report.status == "halted"  # the first node's drain was blocked; `stale` not started
    assert node_state(cluster, [stale])[stale] == (False, None)
    cleared = get_store().records(RecordFilter(target=stale, action="node.clear-stale-mark"))
    assert any(r.details.get("previous_run") == "local-0123456789ab" for r in cleared)


def test_release_gives_back_our_cordon_and_leaves_a_foreign_one_alone(
    cluster, node_group, namespace
):
    group = node_group(3)
    ours, _ = _halt_leaving_node_cordoned(cluster, group, namespace)
    foreign, stale = [n for n in group.names if n != ours]
    _by_hand(cluster, foreign, True)  # `kubectl cordon`, no mark
    # a stale mark: our cordon lifted by hand, then cordoned again by hand
    cluster.core.patch_node(
        stale, {"metadata": {"annotations": {CORDONED_BY_ANNOTATION: "local-0123456789ab"}}}
    )
    _by_hand(cluster, stale, True)

    released = _release(cluster, ours, foreign, stale)

    assert released.returncode == 0, released.stdout + released.stderr
    assert node_state(cluster, [ours])[ours] == (False, None)
    assert node_state(cluster, [foreign])[foreign] == (True, None)
    assert cluster.core.read_node(stale).spec.unschedulable  # someone else's cordon: kept
    out = released.stdout
    assert f"{ours}: uncordoned" in out
    assert f"{foreign}: left cordoned: cordoned by someone else" in out
    assert f"{stale}: left cordoned: cordoned by someone else" in out
    assert get_store().records(RecordFilter(target=ours, action="node.release"))


def test_release_lifts_nothing_while_a_run_holds_the_lease(cluster, node_group, namespace):
    group = node_group(2)
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    node = pod.spec.node_name
    lease = f"maint-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    kube = ["--kubeconfig", str(cluster.kubeconfig)]
    run = subprocess.Popen(
        [RUNBOOK, "maintain", *kube, node, "--drain-timeout", "120s", "--lease-name", lease],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: node_state(cluster, [node])[node][0], what="the run cordons the node")

        refused = _release(cluster, node, lease=lease)

        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "nothing was released" in refused.stderr
        assert node_state(cluster, [node])[node][0]  # mid-drain: still cordoned
    finally:
        run.send_signal(signal.SIGTERM)  # the run stops, releases the lease, leaves its cordon
        run.communicate(timeout=60)

    released = _release(cluster, node, lease=lease)

    assert released.returncode == 0, released.stdout + released.stderr
    assert node_state(cluster, [node])[node] == (False, None)
