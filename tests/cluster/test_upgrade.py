"""Cluster upgrades against the real local control plane: what an operator notices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from flows.rolling_maintenance import run_local as maintain_locally
from runbooks.audit import RecordFilter, get_store
from runbooks.cluster import launcher, workloads
from runbooks.cluster.nodes import (
    add_nodes,
    set_node_info,
    set_not_ready,
    wait_nodes_ready,
    wait_until_usable,
)
from tasks.audit import default_actor
from tests.cluster.test_maintenance_helpers import params, wait_for

pytestmark = pytest.mark.cluster


def test_kubelet_version_action_upgrades_each_drained_kwok_node_with_a_reboot(
    cluster, node_group, namespace
):
    group = node_group(2)
    before = {n: cluster.core.read_node(n).status.node_info for n in group.names}
    action = {"kind": "kubelet-version", "kubelet_version": "v1.36.9", "reboots": True}

    report = maintain_locally(params(cluster, group, action=action))

    assert report.status == "succeeded", report.message
    for name in group.names:
        node = cluster.core.read_node(name)
        assert node.status.node_info.kubelet_version == "v1.36.9"
        assert node.status.node_info.boot_id != before[name].boot_id
        assert not node.spec.unschedulable


def test_command_provider_runs_argv_without_a_shell_keeps_output_and_waits_for_the_server(
    cluster,
):
    from runbooks.kube_target import KubeTarget
    from runbooks.upgrade.params import UpgradeParams
    from tasks.upgrade_providers import CommandProvider, ProviderError
    from tasks.upgrade_state import api_server_version

    target = KubeTarget(kubeconfig=cluster.kubeconfig)
    running = api_server_version(target)
    echo = f"{sys.executable} -c 'import sys; print(sys.argv[1:])' {{version}} '$HOME;x'"
    ok = CommandProvider(
        UpgradeParams(
            to=running,
            provider="command",
            control_plane_command=echo,
            node_command="true",
            target=target,
            command_timeout="20s",
        )
    ).upgrade_control_plane(running)
    assert ok.output == [f"['{running}', '$HOME;x']"]  # one word each, no shell expansion
    assert f"API server at {running}" in ok.summary

    failing = UpgradeParams(
        to=running,
        provider="command",
        control_plane_command=f"{sys.executable} -c 'print(\"kubeadm: no\"); raise SystemExit(3)'",
        node_command="true",
        target=target,
    )
    with pytest.raises(ProviderError, match=r"exited 3; output: kubeadm: no"):
        CommandProvider(failing).upgrade_control_plane(running)

    never = UpgradeParams(
        to="v1.99.0",
        provider="command",
        control_plane_command="true",
        node_command="true",
        target=target,
        command_timeout="3s",
    )
    with pytest.raises(ProviderError, match=f"did not report v1.99.0 .* \\(last: {running}\\)"):
        CommandProvider(never).upgrade_control_plane("v1.99.0")


# --- end to end: a v1.35.4 cluster upgraded to v1.36.3 by `runbook upgrade` -----------------

OLD, NEW = "v1.35.4", "v1.36.3"
RUNBOOK = str(Path(sys.executable).with_name("runbook"))


@pytest.fixture
def old_cluster() -> Iterator[tuple[launcher.ClusterRecord, client.ApiClient]]:
    """A cluster of its own on v1.35.4: three workers reporting kubelet v1.35.4, a Deployment
    of 4 behind a budget of maxUnavailable 1 on them."""
    name = f"upg-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    record = launcher.up(name=name, nodes=0, stop_with_caller=True, kubernetes_version=OLD)
    try:
        api = config.new_client_from_config(config_file=str(record.kubeconfig))
        workers = ["w-1", "w-2", "w-3"]
        add_nodes(record.kubeconfig, names=workers, labels={"pool": "blue"})
        wait_nodes_ready(record.kubeconfig, workers)
        for worker in workers:
            set_node_info(record.kubeconfig, worker, kubelet_version=OLD)
        wait_until_usable(record.kubeconfig, 3)
        workloads.create_deployment(api, "default", "web", 4, {"pool": "blue"}, max_unavailable=1)
        workloads.wait_pods_ready(api, "default", 4)
        workloads.wait_pdb_observed(api, "default", "web-pdb")
        yield record, api
    finally:
        launcher.down(name)


class ClusterWatch:
    """Polls (the API server restarts mid-run, so no long watch) which workers are
    unschedulable and how far the budget is above its desired healthy count."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core, self.policy = client.CoreV1Api(api), client.PolicyV1Api(api)
        self.most_out = 0
        self.ever_out: set[str] = set()
        self.budget_margin = 10**6
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ClusterWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                nodes = self.core.list_node(label_selector="pool=blue", _request_timeout=2).items
                pdb = self.policy.read_namespaced_pod_disruption_budget(
                    "web-pdb", "default", _request_timeout=2
                )
            except Exception:  # the API server is restarting
                continue
            out = {n.metadata.name for n in nodes if n.spec.unschedulable}
            self.most_out = max(self.most_out, len(out))
            self.ever_out |= out
            status = pdb.status
            self.budget_margin = min(
                self.budget_margin, (status.current_healthy or 0) - (status.desired_healthy or 0)
            )


def upgrade_cli(
    record: launcher.ClusterRecord, *args: str, unattended: bool = True, timeout: float = 420
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.pop("RUNBOOK_ALLOW_UNATTENDED_UPGRADES", None)
    if unattended:
        env["RUNBOOK_ALLOW_UNATTENDED_UPGRADES"] = "1"
    return subprocess.run(
        [RUNBOOK, "upgrade", "--kubeconfig", str(record.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def kubelets(api: client.ApiClient) -> dict[str, str]:
    nodes = client.CoreV1Api(api).list_node(label_selector="pool=blue").items
    return {n.metadata.name: n.status.node_info.kubelet_version for n in nodes}


def test_a_v1_35_cluster_is_upgraded_end_to_end_without_breaking_a_budget(old_cluster):
    record, api = old_cluster
    apiserver_pid = launcher.load_record(record.name).pids["kube-apiserver"]  # type: ignore[union-attr]

    with ClusterWatch(api) as watch:
        done = upgrade_cli(
            record,
            "--to",
            NEW,
            "--approval",
            "none",
            "--max-unavailable",
            "1",
            "--output",
            "json",
        )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded", report["message"]
    assert client.VersionApi(api).get_code().git_version == NEW
    after = launcher.load_record(record.name)
    assert after is not None and after.pids["kube-apiserver"] != apiserver_pid
    assert os.readlink(f"/proc/{after.pids['kube-apiserver']}/exe").find(f"k8s-{NEW}") >= 0
    assert kubelets(api) == {"w-1": NEW, "w-2": NEW, "w-3": NEW}
    assert [n["result"] for n in report["nodes"]] == ["maintained"] * 3
    assert watch.ever_out == {"w-1", "w-2", "w-3"} and watch.most_out == 1
    assert watch.budget_margin >= 0  # never fewer healthy pods than the budget wants
    assert any("etcd snapshot" in step for step in report["steps"])
    assert set(report["phases"]) >= {"preflight", "control_plane", "nodes", "verify"}
    assert not any(c["status"] == "fail" for c in report["verify"]["checks"])
    trail = get_store().records(RecordFilter(flow_run_id=report["run_id"]))
    actions = [r.action for r in trail]
    assert actions.index("approval.waived") < actions.index("run.start")
    assert next(r for r in trail if r.action == "approval.waived").actor == default_actor()
    assert {"etcd.snapshot", "control-plane.upgrade", "node.cordon", "run.finish"} <= set(actions)

    again = upgrade_cli(record, "--to", NEW, "--approval", "none", "--output", "json")
    rerun = json.loads(again.stdout)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"control plane already at {NEW}: not touched" in rerun["steps"]
    assert rerun["nodes"] == []


def cluster_state(api: client.ApiClient) -> tuple[str, dict[str, str], set[str]]:
    """What an upgrade would change: the server version, kubelets, cordons."""
    nodes = client.CoreV1Api(api).list_node(label_selector="pool=blue").items
    return (
        client.VersionApi(api).get_code().git_version,
        kubelets(api),
        {n.metadata.name for n in nodes if n.spec.unschedulable},
    )


def test_bad_input_and_refusals_exit_with_one_line_and_change_nothing(old_cluster):
    record, api = old_cluster
    before = cluster_state(api)
    bad = [
        (["--to", "1.36"], "is not a Kubernetes version"),
        (["--to", "v1.34.9"], "lower than the API server's v1.35.4"),
        (["--to", NEW, "--provider", "gke"], "provider"),
        (["--to", NEW, "--provider", "command"], "needs --control-plane-command"),
        (
            [
                "--to",
                NEW,
                "--provider",
                "command",
                "--control-plane-command",
                "ssh {host} x",
                "--node-command",
                "true",
            ],
            "unknown placeholder(s) {host}",
        ),
        (["--to", NEW, "--strategy", "replace"], "cannot create nodes"),
        (["--to", NEW, "--selector", "pool=none"], "no worker node matching 'pool=none'"),
        (["--to", NEW, "--skip-check", "no.such.check"], "unknown check id no.such.check"),
    ]
    for args, message in bad:
        done = upgrade_cli(record, *args, "--approval", "none")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert message in lines[-1] and lines[-1].startswith("error: "), (args, lines)
        assert "Traceback" not in done.stderr

    unattended = upgrade_cli(record, "--to", NEW, "--approval", "none", unattended=False)
    assert unattended.returncode == 2
    assert "RUNBOOK_ALLOW_UNATTENDED_UPGRADES=1" in unattended.stderr

    skipped_minor = upgrade_cli(record, "--to", "v1.37.0", "--approval", "none", "--output", "json")
    report = json.loads(skipped_minor.stdout)
    assert skipped_minor.returncode == 1
    assert report["status"] == "refused" and "upgrade.version-step" in report["message"]
    assert cluster_state(api) == before


def test_a_node_that_does_not_come_back_halts_and_leaves_the_rest_untouched(old_cluster):
    """w-1 (first in order) stays NotReady through its upgrade: its kubelet never reports
    Ready again. The operator accepted the failing Ready preflight knowingly to get there."""
    from flows.cluster_upgrade import run_local as upgrade_locally
    from runbooks.kube_target import KubeTarget
    from runbooks.upgrade.params import UpgradeParams

    record, api = old_cluster
    core = client.CoreV1Api(api)
    set_not_ready(record.kubeconfig, "w-1")
    wait_for(
        lambda: (
            not any(
                c.type == "Ready" and c.status == "True"
                for c in core.read_node("w-1").status.conditions or []
            )
        ),
        timeout=60,
        what="w-1 NotReady",
    )
    # Its pods would stay Terminating (KWOK stops finishing them) until the taint manager
    # evicts them after 5 minutes: move them now, so the test is about the Ready wait.
    for pod in core.list_namespaced_pod("default", field_selector="spec.nodeName=w-1").items:
        core.delete_namespaced_pod(pod.metadata.name, "default", grace_period_seconds=0)
    workloads.wait_pods_ready(api, "default", 4)
    os.environ["RUNBOOK_ALLOW_UNATTENDED_UPGRADES"] = "1"
    try:
        report = upgrade_locally(
            UpgradeParams(
                to=NEW,
                approval="none",
                ready_timeout="10s",
                skip_check=["upgrade.nodes-ready", "upgrade.verify"],
                target=KubeTarget(kubeconfig=record.kubeconfig),
            )
        )
    finally:
        del os.environ["RUNBOOK_ALLOW_UNATTENDED_UPGRADES"]

    assert report.status == "halted" and report.exit_code == 1, report.message
    assert "w-1 failed at ready" in report.message and "not started: w-2, w-3" in report.message
    assert client.VersionApi(api).get_code().git_version == NEW  # the control plane went first
    assert kubelets(api) == {"w-1": NEW, "w-2": OLD, "w-3": OLD}
    cordoned = {
        n.metadata.name
        for n in core.list_node(label_selector="pool=blue").items
        if n.spec.unschedulable
    }
    assert cordoned == {"w-1"}  # left cordoned for a person, the rest untouched
    set_not_ready(record.kubeconfig, "w-1", False)


def test_sigkill_during_the_node_phase_then_a_rerun_finishes_the_upgrade(old_cluster):
    record, api = old_cluster
    core = client.CoreV1Api(api)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["RUNBOOK_ALLOW_UNATTENDED_UPGRADES"] = "1"
    first = subprocess.Popen(
        [
            RUNBOOK,
            "upgrade",
            "--kubeconfig",
            str(record.kubeconfig),
            "--to",
            NEW,
            "--approval",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # the second node in hand: one done, one cordoned
            try:
                if core.read_node("w-2", _request_timeout=2).spec.unschedulable:
                    break
            except Exception:  # the API server is restarting
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the node phase never reached w-2")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert kubelets(api)["w-3"] == OLD
    # The killed run was draining w-2: its pods come back elsewhere first. Until they do, the
    # budget allows 0 disruptions and the rerun's preflight refuses (upgrade.budgets), as it
    # should; an operator reruns once the workload is whole again.
    policy = client.PolicyV1Api(api)
    settled: list[float] = []

    def budget_settled() -> bool:
        """Room for a disruption, seen for 3 s in a row (the status lags each eviction)."""
        status = policy.read_namespaced_pod_disruption_budget("web-pdb", "default").status
        if (status.disruptions_allowed or 0) < 1:
            settled.clear()
            return False
        settled.append(time.monotonic())
        return settled[-1] - settled[0] >= 3

    # An eviction cut off by the kill can hold the budget for up to 2 minutes (the API server
    # counts it in disruptedPods until its pod is gone or the entry expires).
    wait_for(budget_settled, timeout=180, what="web-pdb allows a disruption again, for 3 s")

    rerun = upgrade_cli(record, "--to", NEW, "--approval", "none", "--output", "json")

    report = json.loads(rerun.stdout)
    assert rerun.returncode == 0, report["message"] + rerun.stderr[-2000:]
    assert f"control plane already at {NEW}: not touched" in report["steps"]
    assert "w-1" not in {n["node"] for n in report["nodes"]}  # finished before the kill
    assert kubelets(api) == {"w-1": NEW, "w-2": NEW, "w-3": NEW}
    assert not any(n.spec.unschedulable for n in core.list_node(label_selector="pool=blue").items)
