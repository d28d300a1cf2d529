"""`runbook maintain` as an operator runs it: exit codes, JSON, dry run, locks, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest
from kubernetes import client

from runbooks.cluster import workloads
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.params import LeaseSettings
from tasks.kube.lease import read_holder
from tests.cluster.test_maintenance_helpers import RUNBOOK, cli, node_state, pod_uids, wait_for

pytestmark = pytest.mark.cluster


def lease_args() -> tuple[list[str], LeaseSettings]:
    """A lease of the test's own (tests share one cluster) with a short takeover time."""
    name = f"maint-{uuid.uuid4().hex[:8]}"
    lease = LeaseSettings.model_validate({"name": name, "duration": "5s"})
    return ["--lease-name", name, "--lease-duration", "5s"], lease


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-node"], "node no-such-node not found"),
        (["--selector", "kube-runbooks.test/group=nobody"], "matches no nodes"),
        (["--selector", "x=y", "--max-unavailable", "0"], "at least 1"),
        (["--selector", "x=y", "--max-unavailable", "150%"], "more than 100%"),
        (["--selector", "a b"], "bad node selector"),
        ([], "name the nodes"),
        (["n1", "--drain-timeout", "soon"], "cannot read duration"),
        (["n1", "--action", "manual"], "set PREFECT_API_URL"),  # no server to resume from
        # issue 10 item 9: each of these gave a traceback, or failed only mid-run
        (["n1", "--drain-timeout", "99999999999999d"], "too long: at most 365d"),
        (["n1", "--lease-duration", "P99999999999D"], "lease.duration"),
        (["n1", "--ready-timeout", "400d"], "too long: at most 365d"),
        (["n1", "--grace-period", "99999999999999999999"], "less than or equal to 31536000"),
        (["n1", "--block-on-pods", "a!b"], "not a label selector requirement: 'a!b'"),
        (["n1", "--prometheus-url", "prometheus:9090"], "http:// or https://"),
        (["--selector", "!!"], "bad node selector '!!'"),
        (["Worker_1"], "not valid node names: Worker_1"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line_and_changes_nothing(cluster, args, message):
    before = cluster_and_audit(cluster)

    done = cli(cluster, *args)

    assert_one_line_exit_2(done, message)
    assert cluster_and_audit(cluster) == before


def cluster_and_audit(cluster) -> tuple[dict[str, tuple[bool, dict[str, str]]], int]:
    """Every node's cordon and the engine's marks on it, and the newest audit record's number.

    Not the resourceVersion: KWOK's status heartbeats change that whatever the CLI does."""
    from runbooks.audit import RecordFilter, get_store

    nodes = {
        n.metadata.name: (
            bool(n.spec.unschedulable),
            {
                k: v
                for k, v in (n.metadata.annotations or {}).items()
                if k.startswith("kube-runbooks.io/")
            },
        )
        for n in cluster.core.list_node().items
    }
    newest = get_store().records(RecordFilter(limit=1, newest_first=True))
    return nodes, newest[0].seq if newest else 0


def assert_one_line_exit_2(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("clusters: [\n", "is not valid YAML: line 2, column 1"),
        ("root:x:0:0:root:/root:/bin/bash\n", "is not a kubeconfig (found a str)"),
        ("- one\n- two\n", "is not a kubeconfig (found a list)"),
        ("clusters: 5\ncontexts: x\n", "is not a valid kubeconfig"),
    ],
)
def test_a_kubeconfig_that_is_not_one_exits_2_and_changes_nothing(
    cluster, tmp_path, content, message
):
    path = tmp_path / "config"
    path.write_text(content)
    before = cluster_and_audit(cluster)

    done = cli(cluster, "n1", "--kubeconfig", str(path))  # the last --kubeconfig counts

    assert_one_line_exit_2(done, message)
    assert cluster_and_audit(cluster) == before


@pytest.mark.parametrize(
    "url", ["postgresql+asyncpg://u@127.0.0.1/db", "mysql://u@127.0.0.1/db", "not a url"]
)
def test_an_unusable_audit_url_exits_2_before_the_cluster_is_touched(cluster, node_group, url):
    (node,) = node_group(1).names
    before = cluster_and_audit(cluster)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}

    done = subprocess.run(
        [RUNBOOK, "maintain", node, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        env={**env, "RUNBOOK_AUDIT_URL": url},
        timeout=120,
        check=False,
    )

    assert_one_line_exit_2(done, "audit store URL")
    assert cluster_and_audit(cluster) == before


def test_dry_run_prints_the_plan_and_changes_nothing(cluster, node_group, namespace):
    group = node_group(3)
    sel = group.node_selector
    workloads.create_deployment(cluster.api, namespace, "web", 3, sel, min_available=3)
    workloads.create_daemonset(cluster.api, namespace, "agent", sel)
    workloads.wait_pods_ready(cluster.api, namespace, 6)
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")
    nodes_before = {n: cluster.core.read_node(n).to_dict() for n in group.names}
    uids_before = pod_uids(cluster, namespace)

    text = cli(cluster, "--selector", group.selector, "--dry-run", "--max-unavailable", "2")
    as_json = cli(cluster, "--selector", group.selector, "--dry-run", "--output", "json")

    assert text.returncode == 0, text.stderr
    assert "Rolling node maintenance plan" in text.stdout
    assert "### Batches" in text.stdout and "1. " in text.stdout
    assert f"{namespace}/web-" in text.stdout  # pods that would be evicted, per node
    assert f"PodDisruptionBudget {namespace}/web-pdb (0 disruptions allowed" in text.stdout
    assert "DaemonSet pod (agent)" in text.stdout
    summary = json.loads(as_json.stdout)
    assert summary["status"] == "dry-run"
    assert {n["result"] for n in summary["nodes"]} == {"not-started"}
    nodes_after = {n: cluster.core.read_node(n).to_dict() for n in group.names}
    for name in group.names:  # specs and annotations exactly as before
        assert nodes_after[name]["spec"] == nodes_before[name]["spec"]
        assert (
            nodes_after[name]["metadata"]["annotations"]
            == nodes_before[name]["metadata"]["annotations"]
        )
    assert pod_uids(cluster, namespace) == uids_before


def test_json_output_reports_each_node_with_its_evicted_pods(cluster, node_group, namespace):
    group = node_group(2)
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    args, _ = lease_args()

    done = cli(cluster, "--selector", group.selector, "--output", "json", *args)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded"
    assert sorted(n["node"] for n in summary["nodes"]) == sorted(group.names)
    assert all(n["result"] == "maintained" and n["failed_step"] is None for n in summary["nodes"])
    evicted = [p for n in summary["nodes"] for p in n["pods_evicted"]]
    assert len(evicted) >= 2 and all(p.startswith(f"{namespace}/web-") for p in evicted)


def _blocked_setup(cluster, group, namespace) -> str:
    """A budget that blocks the drain of one node; returns that node."""
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    return pod.spec.node_name


def _start(cluster, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.Popen(
        [RUNBOOK, "maintain", "--kubeconfig", str(cluster.kubeconfig), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _free_budget(cluster, namespace) -> None:
    cluster.policy.patch_namespaced_pod_disruption_budget(
        "api-pdb", namespace, {"spec": {"minAvailable": 0}}
    )
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")


def test_second_concurrent_run_is_refused_fast_naming_the_holder(cluster, node_group, namespace):
    group = node_group(2)
    node = _blocked_setup(cluster, group, namespace)
    args, lease = lease_args()
    first = _start(cluster, node, "--drain-timeout", "60s", *args)
    try:
        wait_for(lambda: node_state(cluster, [node])[node][0], what="first run cordons")
        holder = read_holder(KubeTarget(kubeconfig=cluster.kubeconfig), lease)
        assert holder and f"pid {first.pid}" in holder

        started = time.monotonic()
        second = cli(cluster, *group.names, *args)

        assert second.returncode == 1
        assert time.monotonic() - started < 20
        assert f"held by {holder}" in second.stdout
        assert "nothing was changed" in second.stdout
        other = next(n for n in group.names if n != node)
        assert node_state(cluster, [other]) == {other: (False, None)}
        _free_budget(cluster, namespace)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_crash_mid_drain_then_rerun_finishes_and_leaves_nothing_cordoned(
    cluster, node_group, namespace
):
    group = node_group(3)
    node = _blocked_setup(cluster, group, namespace)
    order = [node] + [n for n in group.names if n != node]
    args, lease = lease_args()
    target = KubeTarget(kubeconfig=cluster.kubeconfig)
    run = _start(cluster, *order, "--drain-timeout", "120s", *args)
    try:
        wait_for(lambda: node_state(cluster, [node])[node][0], what="run cordons the node")
        time.sleep(1.5)  # mid-drain: the eviction is being refused by the budget
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()

    crashed_with = node_state(cluster, [node])[node]
    assert crashed_with[0] and crashed_with[1]  # left cordoned, marked with the dead run's id
    assert read_holder(target, lease) is not None  # the dead run's lease, not yet expired

    _free_budget(cluster, namespace)
    wait_for(lambda: read_holder(target, lease) is None, timeout=15, what="lease expiry")
    rerun = cli(cluster, *order, "--output", "json", *args)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads(rerun.stdout)
    first = next(n for n in summary["nodes"] if n["node"] == node)
    assert any("earlier run" in note for note in first["notes"])
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    lease_obj = client.CoordinationV1Api(cluster.api).read_namespaced_lease(
        lease.name, lease.namespace
    )
    assert lease_obj.spec.holder_identity is None  # released


def test_sigterm_mid_drain_stops_cleanly_and_releases_the_lease_at_once(
    cluster, node_group, namespace
):
    group = node_group(2)
    node = _blocked_setup(cluster, group, namespace)
    args, lease = lease_args()
    target = KubeTarget(kubeconfig=cluster.kubeconfig)
    run = _start(cluster, node, "--drain-timeout", "120s", *args)
    try:
        wait_for(lambda: node_state(cluster, [node])[node][0], what="run cordons the node")
        time.sleep(1.5)  # mid-drain: the eviction is being refused by the budget
        run.send_signal(signal.SIGTERM)  # what a worker or a pod shutdown sends
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 1, out + err
    assert "interrupted" in err
    assert read_holder(target, lease) is None  # released now, not after its duration
    cordoned, marked_by = node_state(cluster, [node])[node]
    assert cordoned and marked_by  # a rerun recognises its own cordon and finishes it
