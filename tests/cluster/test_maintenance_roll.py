"""Rolling node maintenance against the real local control plane: what an operator notices."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from kubernetes import client

from flows.rolling_maintenance import rolling_node_maintenance, run_local
from runbooks.audit import RecordFilter, get_store
from runbooks.cluster import workloads
from runbooks.maintenance.report import MaintenanceReport, NodeResult
from tests.cluster.test_maintenance_helpers import (
    UnschedulableWatcher,
    node_state,
    params,
    pod_uids,
)

pytestmark = pytest.mark.cluster


def node_result(report: MaintenanceReport, node: str) -> NodeResult:
    """The report's row for ``node``: every node the run was given has one."""
    result = report.result(node)
    assert result is not None, f"node {node} missing from the report"
    return result


def seed(cluster, group, namespace, replicas: int = 4) -> None:
    """A Deployment with a budget, a StatefulSet and a DaemonSet on the group's nodes."""
    sel = group.node_selector
    workloads.create_deployment(cluster.api, namespace, "web", replicas, sel, max_unavailable=1)
    workloads.create_statefulset(cluster.api, namespace, "db", 2, sel)
    workloads.create_daemonset(cluster.api, namespace, "agent", sel)
    workloads.wait_pods_ready(cluster.api, namespace, replicas + 2 + len(group.names))
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")


def daemonset_uids(cluster, namespace) -> dict[str, str]:
    return {n: u for n, u in pod_uids(cluster, namespace).items() if n.startswith("agent-")}


def test_clean_roll_maintains_every_node_one_at_a_time_as_a_prefect_flow(
    cluster, node_group, namespace, prefect_server
):
    group = node_group(3)
    seed(cluster, group, namespace)
    agents = daemonset_uids(cluster, namespace)

    with UnschedulableWatcher(cluster, group.selector) as watcher:
        state = rolling_node_maintenance(params(cluster, group), return_state=True)
    report = state.result()

    assert state.is_completed(), state.message
    assert report.status == "succeeded"
    assert [r.result for r in report.nodes] == ["maintained"] * 3
    assert watcher.ever_out == set(group.names)  # every node went out ...
    assert watcher.most_out_at_once == 1  # ... one at a time
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    assert daemonset_uids(cluster, namespace) == agents  # DaemonSet pods were left alone
    evicted = [p for r in report.nodes for p in r.pods_evicted]
    assert any("/db-" in p for p in evicted) and any("/web-" in p for p in evicted)
    assert not any("/agent-" in p for p in evicted)
    workloads.wait_pods_ready(cluster.api, namespace, 4 + 2 + 3)
    # the artifacts an operator opens in the UI
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_id = state.state_details.flow_run_id
    assert run_id is not None, "the final state names its flow run"
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    keys = {a.key for a in artifacts}
    assert {"rolling-node-maintenance-nodes", "rolling-node-maintenance-report"} <= keys
    # and the audit trail: cordon, evict, uncordon, lease, with intent and outcome
    actions = {r.action for r in get_store().records(RecordFilter(flow_run_id=report.run_id))}
    assert {
        "node.cordon",
        "pod.evict",
        "node.uncordon",
        "lease.acquire",
        "lease.release",
    } <= actions


def test_max_unavailable_is_never_exceeded_counting_nodes_already_out(
    cluster, node_group, namespace
):
    group = node_group(5)
    seed(cluster, group, namespace, replicas=6)
    someone = group.names[2]
    cluster.core.patch_node(someone, {"spec": {"unschedulable": True}})  # a person's cordon

    with UnschedulableWatcher(cluster, group.selector) as watcher:
        report = run_local(params(cluster, group, max_unavailable="3"))

    assert report.status == "succeeded", report.message
    assert watcher.most_out_at_once <= 3
    assert watcher.most_out_at_once == 3  # it did use the room it had
    assert node_result(report, someone).result == "skipped"
    assert node_state(cluster, [someone]) == {someone: (True, None)}  # still cordoned, not ours
    others = [n for n in group.names if n != someone]
    assert node_state(cluster, others) == {n: (False, None) for n in others}


def test_blocking_budget_halts_names_the_budget_and_touches_nothing_else(
    cluster, node_group, namespace
):
    group = node_group(3)
    workloads.create_deployment(
        cluster.api, namespace, "api", 2, group.node_selector, min_available=2
    )
    pods = workloads.wait_pods_ready(cluster.api, namespace, 2)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    first = sorted({p.spec.node_name for p in pods})[0]
    order = [first] + [n for n in group.names if n != first]
    before = pod_uids(cluster, namespace)

    started = time.monotonic()
    report = run_local(params(cluster, group, selector=None, nodes=order, drain_timeout="6s"))

    assert report.status == "halted"
    failed = node_result(report, first)
    assert failed.failed_step == "drain"
    assert f"PodDisruptionBudget {namespace}/api-pdb (0 disruptions allowed" in (failed.error or "")
    assert "waited 6s" in (failed.error or "")
    assert failed.left == "schedulable"  # the default: uncordon, its pods run elsewhere
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    assert [node_result(report, n).result for n in order[1:]] == ["not-started", "not-started"]
    assert pod_uids(cluster, namespace) == before  # nothing was evicted
    assert time.monotonic() - started < 30


def test_failed_drain_can_leave_the_node_cordoned_for_a_person(cluster, node_group, namespace):
    group = node_group(2)
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

    assert report.status == "halted"
    assert node_result(report, node).left == "cordoned"
    assert node_state(cluster, [node])[node] == (True, report.run_id)  # marked as ours
    # a rerun recognises its own earlier work and finishes it once the budget allows
    cluster.policy.patch_namespaced_pod_disruption_budget(
        "api-pdb", namespace, {"spec": {"minAvailable": 0}}
    )
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    again = run_local(params(cluster, group, nodes=[node], selector=None))
    assert again.status == "succeeded", again.message
    assert node_state(cluster, [node]) == {node: (False, None)}


def test_budget_that_frees_up_while_waiting_lets_the_drain_finish(cluster, node_group, namespace):
    group = node_group(2)
    workloads.create_deployment(
        cluster.api, namespace, "api", 2, group.node_selector, min_available=2
    )
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")

    def free_budget_later() -> None:
        time.sleep(4)
        cluster.apps.patch_namespaced_deployment_scale("api", namespace, {"spec": {"replicas": 3}})

    helper = threading.Thread(target=free_budget_later)
    helper.start()
    report = run_local(params(cluster, group, drain_timeout="60s"))
    helper.join()

    assert report.status == "succeeded", report.message
    assert sum(len(r.pods_evicted) for r in report.nodes) >= 2
    assert max(r.durations["drain"] for r in report.nodes) >= 3  # it did wait for the budget


def test_unmanaged_and_emptydir_pods_are_refused_by_name_then_allowed_by_the_flags(
    cluster, node_group, namespace
):
    group = node_group(2)
    workloads.create_bare_pod(cluster.api, namespace, "debug-shell", group.names[0])
    workloads.create_deployment(
        cluster.api, namespace, "cache", 1, group.node_selector, empty_dir=True
    )
    workloads.wait_pods_ready(cluster.api, namespace, 2)

    refused = run_local(params(cluster, group))

    assert refused.status == "refused"
    assert f"{namespace}/debug-shell" in refused.message and "--force" in refused.message
    assert f"{namespace}/cache-" in refused.message and "--delete-emptydir-data" in refused.message
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}

    allowed = run_local(params(cluster, group, force=True, delete_emptydir_data=True))

    assert allowed.status == "succeeded", allowed.message
    evicted = [p for r in allowed.nodes for p in r.pods_evicted]
    assert f"{namespace}/debug-shell" in evicted


NOT_READY_SCRIPT = """
import sys, time
from pathlib import Path
from runbooks.cluster.nodes import core_api, is_ready, set_not_ready
kubeconfig, node = Path(sys.argv[1]), sys.argv[2]
set_not_ready(kubeconfig, node)
api = core_api(kubeconfig)
while is_ready(api.read_node(node)):  # return only once the node really reports NotReady
    time.sleep(0.2)
print(f"{node} went down for maintenance")
"""


def test_node_that_does_not_come_back_ready_halts_and_no_further_node_is_touched(
    cluster, node_group, namespace, tmp_path
):
    group = node_group(3)
    script = tmp_path / "break_node.py"
    script.write_text(NOT_READY_SCRIPT)
    first = group.names[0]
    action = {
        "kind": "command",
        "command": f"{sys.executable} {script} {cluster.kubeconfig} {{node}}",
    }

    with UnschedulableWatcher(cluster, group.selector) as watcher:
        report = run_local(
            params(
                cluster, group, nodes=group.names, selector=None, action=action, ready_timeout="4s"
            )
        )
    try:
        assert report.status == "halted"
        result = node_result(report, first)
        assert result.failed_step == "ready"
        assert "not Ready" in (result.error or "")
        assert f"{first} went down for maintenance" in " ".join(result.notes)  # output kept
        assert result.left == "cordoned"
        assert watcher.ever_out == {first}  # no further node touched
        assert node_state(cluster, [first])[first] == (True, report.run_id)
    finally:
        from runbooks.cluster.nodes import set_not_ready

        set_not_ready(cluster.kubeconfig, first, not_ready=False)


def test_reboot_action_waits_for_a_new_boot_id(cluster, node_group, namespace, tmp_path):
    group = node_group(1)
    (node,) = group.names
    before = cluster.core.read_node(node).status.node_info.boot_id
    script = tmp_path / "reboot.py"
    script.write_text(
        "import sys, uuid\nfrom pathlib import Path\n"
        "from runbooks.cluster.nodes import set_node_info\n"
        "set_node_info(Path(sys.argv[1]), sys.argv[2], boot_id=str(uuid.uuid4()))\n"
    )
    reboot = {
        "kind": "command",
        "reboots": True,
        "command": f"{sys.executable} {script} {cluster.kubeconfig} {{node}}",
    }
    no_reboot = {"kind": "command", "reboots": True, "command": "true"}

    done = run_local(params(cluster, group, action=reboot))
    missing = run_local(params(cluster, group, action=no_reboot, ready_timeout="3s"))

    assert done.status == "succeeded", done.message
    assert cluster.core.read_node(node).status.node_info.boot_id != before
    assert missing.status == "halted"
    assert "did not reboot" in (node_result(missing, node).error or "")
    cluster.core.patch_node(node, {"spec": {"unschedulable": None}})


def test_job_action_runs_a_job_pinned_to_the_cordoned_node(cluster, node_group, namespace):
    group = node_group(2)
    action = {"kind": "job", "job_namespace": namespace, "command": "echo patching {node}"}

    report = run_local(params(cluster, group, action=action, max_unavailable="2"))

    assert report.status == "succeeded", report.message
    listed = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert sorted(j.spec.template.spec.node_name for j in listed) == sorted(group.names)
    assert all(j.status.succeeded == 1 for j in listed)
    container = listed[0].spec.template.spec.containers[0]
    assert container.command[:2] == ["echo", "patching"]
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


class _Alerts(BaseHTTPRequestHandler):
    alerts: ClassVar[list] = []

    def do_GET(self) -> None:
        body = json.dumps({"status": "success", "data": {"alerts": self.alerts}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_firing_alert_blocks_the_rollout_before_any_node_is_touched(cluster, node_group, namespace):
    group = node_group(2)
    _Alerts.alerts = [
        {
            "labels": {"alertname": "EtcdHighFsyncDurations", "severity": "critical"},
            "state": "firing",
        },
        {"labels": {"alertname": "Watchdog", "severity": "none"}, "state": "firing"},
    ]
    server = HTTPServer(("127.0.0.1", 0), _Alerts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        blockers = {
            "prometheus_url": f"http://127.0.0.1:{server.server_port}",
            "alert_filter": "severity=critical",
            "check_interval": "1s",
            "max_wait": "3s",
        }
        with UnschedulableWatcher(cluster, group.selector) as watcher:
            report = run_local(params(cluster, group, blockers=blockers))
    finally:
        server.shutdown()

    assert report.status == "halted"
    assert "alert EtcdHighFsyncDurations" in report.message
    assert "Watchdog" not in report.message
    assert watcher.ever_out == set()


def test_blocking_pod_delays_the_next_batch_until_it_is_gone(cluster, node_group, namespace):
    group = node_group(3)
    parking = group.names[2]
    workloads.create_deployment(
        cluster.api, namespace, "backup", 1, {"kubernetes.io/hostname": parking}
    )
    workloads.wait_pods_ready(cluster.api, namespace, 1)
    selector = "app=backup"
    blockers = {"pod_selector": selector, "check_interval": "1s", "max_wait": "60s"}

    def finish_backup_later() -> None:
        time.sleep(3)
        cluster.apps.delete_namespaced_deployment("backup", namespace)

    helper = threading.Thread(target=finish_backup_later)
    helper.start()
    started = time.monotonic()
    report = run_local(
        params(cluster, group, nodes=group.names[:2], selector=None, blockers=blockers)
    )
    helper.join()

    assert report.status == "succeeded", report.message
    assert time.monotonic() - started >= 3


def test_deadline_stops_new_batches_and_reports_the_nodes_left(cluster, node_group, namespace):
    group = node_group(3)
    action = {"kind": "command", "command": "sleep 2"}
    deadline = datetime.now(UTC) + timedelta(seconds=1)

    report = run_local(params(cluster, group, action=action, deadline=deadline))

    assert report.status == "deadline"
    assert node_result(report, group.names[0]).result == "maintained"  # the node in hand finished
    left = [r.node for r in report.nodes if r.result == "not-started"]
    assert left == group.names[1:]
    assert all(n in report.message for n in left)
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_manual_action_pauses_until_a_person_says_done(
    cluster, node_group, namespace, prefect_server
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    group = node_group(2)
    action = {"kind": "manual", "timeout": "120s"}
    result: dict = {}

    def run() -> None:
        result["state"] = rolling_node_maintenance(
            params(cluster, group, action=action, max_unavailable="2"), return_state=True
        )

    runner = threading.Thread(target=run)
    runner.start()
    paused = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    )
    run_id = None
    deadline = time.monotonic() + 90
    while run_id is None and time.monotonic() < deadline:
        with get_client(sync_client=True) as prefect:
            runs = [
                r
                for r in prefect.read_flow_runs(flow_run_filter=paused)
                if r.flow_id and "rolling" in (prefect.read_flow(r.flow_id).name or "")
            ]
        run_id = runs[0].id if runs else None
        time.sleep(0.5)
    assert run_id is not None, "the run never paused for the manual action"
    assert node_state(cluster, group.names) == {n: (True, str(run_id)) for n in group.names}

    resume_flow_run(run_id, run_input={"done": True, "note": "firmware patched"})
    runner.join(timeout=120)

    report = result["state"].result()
    assert report.status == "succeeded", report.message
    assert all(r.durations.get("action", 0) > 0 for r in report.nodes)
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
