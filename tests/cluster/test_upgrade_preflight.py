"""The upgrade preflight against the real local control plane (run_checks with a LocalRunner):
a healthy cluster passes; a skipped minor, a kubelet that would fall outside skew, an object
written through an API the target removes, and a stale backup each fail the check named for it.

No built-in API that v1.35/v1.36 serve is in the removals table (the last removals were in
v1.32), so the removed-API test declares a CustomResourceDefinition's v1beta1 removed by the
target through the injectable table: the scan, the LIST and the managedFields are real.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from runbooks.backups.params import BackupCheckParams
from runbooks.cluster import launcher, workloads
from runbooks.cluster.launcher import ClusterRecord
from runbooks.cluster.nodes import set_node_info
from runbooks.kit.checks import CheckReport
from runbooks.kube_target import KubeTarget
from runbooks.upgrade.preflight import OwnSnapshot, apply_skips, preflight_checks
from runbooks.upgrade.removals import REMOVALS, Removal
from runbooks.upgrade.versions import Version, parse_version
from tasks.audit import audit_context
from tasks.checks import run_checks
from tasks.etcd import save_snapshot
from tasks.steps import LocalRunner
from tasks.upgrade_reads import read_preflight_inputs
from tests.conftest import LocalCluster, NodeGroup

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A cluster of this module's own (about 4 s to start): the preflight judges the whole
    cluster (every budget, every node), so another file's leftovers, such as a budget in a
    namespace still terminating, must not be in it. RUNBOOK_TEST_KUBECONFIG still wins."""
    existing = os.environ.get("RUNBOOK_TEST_KUBECONFIG")
    if existing:
        yield LocalCluster(
            kubeconfig=Path(existing), api=config.new_client_from_config(config_file=existing)
        )
        return
    name = f"preflight-{os.getpid()}"
    record = launcher.up(name=name, nodes=2, stop_with_caller=True)
    try:
        yield LocalCluster(
            kubeconfig=record.kubeconfig,
            api=config.new_client_from_config(config_file=str(record.kubeconfig)),
            pids=dict(record.pids),
        )
    finally:
        launcher.down(name)


def server_version(cluster: LocalCluster) -> Version:
    return parse_version(client.VersionApi(cluster.api).get_code().git_version)


def next_minor(cluster: LocalCluster, step: int = 1) -> Version:
    current = server_version(cluster)
    return Version((current[0], current[1] + step, 0))


def settled(cluster: LocalCluster, group: NodeGroup, timeout: float = 60) -> NodeGroup:
    """Wait until the node lifecycle controller has lifted the new nodes' not-ready taints
    (Ready comes first; until then provision verification rightly flags the taint)."""
    deadline = time.monotonic() + timeout
    while True:
        tainted = [
            n.metadata.name
            for n in cluster.core.list_node(label_selector=group.selector).items
            if any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])
        ]
        if not tainted:
            return group
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes {tainted} still tainted after {timeout:.0f}s")
        time.sleep(0.25)


def preflight(cluster: LocalCluster, to: Version, **reads: Any) -> CheckReport:
    runner = LocalRunner()
    reads.setdefault("own_snapshot", OwnSnapshot(how="local provider: etcd snapshot"))
    inputs = read_preflight_inputs(runner, KubeTarget(kubeconfig=cluster.kubeconfig), to, **reads)
    with audit_context("cluster-upgrade", flow_run_id=runner.run_id):
        return run_checks(runner, "cluster-upgrade", preflight_checks(), inputs, target="local")


def problems(report: CheckReport) -> dict[str, str]:
    return {c.id: c.status for c in report.problems}


def evidence(report: CheckReport, check: str) -> str:
    return "\n".join(next(c for c in report.checks if c.id == check).evidence)


def test_a_healthy_cluster_passes_every_preflight_check(cluster: LocalCluster) -> None:
    report = preflight(cluster, next_minor(cluster))
    assert problems(report) == {}, report.to_text()
    assert report.exit_code == 0
    assert [c.id for c in report.checks] == [s.id for s in preflight_checks()]


def test_a_skipped_minor_is_refused(cluster: LocalCluster) -> None:
    current, target = server_version(cluster), next_minor(cluster, 2)
    report = preflight(cluster, target)
    assert problems(report) == {"upgrade.version-step": "fail"}, report.to_text()
    assert f"{current} -> {target} skips 1 minor version(s)" in evidence(
        report, "upgrade.version-step"
    )
    assert report.exit_code == 1


def test_a_kubelet_outside_skew_after_the_target_is_named(
    cluster: LocalCluster, node_group: Any
) -> None:
    group: NodeGroup = settled(cluster, node_group(2))
    old, current = group.names[0], server_version(cluster)
    # three minors behind: within the skew policy today (verify passes), outside after the target
    set_node_info(cluster.kubeconfig, old, kubelet_version=f"v1.{current[1] - 3}.0")
    target = next_minor(cluster)
    report = preflight(cluster, target, selector=group.selector)
    assert problems(report) == {"upgrade.kubelet-skew": "fail"}, report.to_text()
    found = evidence(report, "upgrade.kubelet-skew")
    assert f"outside the skew policy at {target}: {old}" in found
    assert "4 minors older" in found and group.names[1] not in found


@pytest.fixture
def widgets(cluster: LocalCluster) -> Iterator[Removal]:
    """A CRD serving v1beta1 and v1 (stored as v1), its v1beta1 declared removed by the target."""
    group = f"w{uuid.uuid4().hex[:6]}.kube-runbooks.test"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                {"name": "v1", "served": True, "storage": True, "schema": schema},
            ],
        },
    }
    extensions = client.ApiextensionsV1Api(cluster.api)
    extensions.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(cluster.api)
    deadline = time.monotonic() + 60
    while True:  # established and served under both versions
        try:
            custom.list_cluster_custom_object(group, "v1beta1", "widgets")
            custom.list_cluster_custom_object(group, "v1", "widgets")
            break
        except client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    target = next_minor(cluster)
    yield Removal(
        group=group,
        version="v1beta1",
        kind="Widget",
        resource="widgets",
        removed_in=target.minor,
        use_instead=f"{group}/v1",
    )
    extensions.delete_custom_resource_definition(f"widgets.{group}")


def _widget(cluster: LocalCluster, removal: Removal, version: str, ns: str, name: str) -> None:
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        removal.group,
        version,
        ns,
        "widgets",
        {"apiVersion": f"{removal.group}/{version}", "kind": "Widget",
         "metadata": {"name": name}, "spec": {"size": 1}},
    )  # fmt: skip


def test_a_workload_written_through_an_api_the_target_removes_is_named(
    cluster: LocalCluster, namespace: str, widgets: Removal
) -> None:
    table = (*REMOVALS, widgets)
    _widget(cluster, widgets, "v1", namespace, "current")
    report = preflight(cluster, next_minor(cluster), removals=table)
    assert problems(report) == {}, report.to_text()  # listed through v1beta1, written via v1
    assert f"scanned {widgets.group}/v1beta1 widgets" in evidence(report, "upgrade.removed-apis")

    _widget(cluster, widgets, "v1beta1", namespace, "legacy")
    report = preflight(cluster, next_minor(cluster), removals=table)
    assert problems(report) == {"upgrade.removed-apis": "fail"}, report.to_text()
    found = evidence(report, "upgrade.removed-apis")
    assert f"{widgets.group}/v1beta1 Widget (removed in v1.{widgets.removed_in[1]}" in found
    assert f"1 of 2 object(s) written through it: {namespace}/legacy (by " in found
    assert f"{namespace}/current" not in found


@pytest.fixture
def etcd_snapshots(cluster: LocalCluster, tmp_path: Path) -> tuple[Path, Path]:
    """A real snapshot of the cluster's etcd in a directory, and the etcdutl built beside it."""
    record = ClusterRecord.model_validate_json(
        (cluster.kubeconfig.parent / "cluster.json").read_text()
    )
    directory = tmp_path / "snapshots"
    directory.mkdir()
    save_snapshot(f"http://127.0.0.1:{record.ports.etcd_client}", directory / "etcd-1.db")
    return directory, record.binaries / "bin" / "etcdutl"


def test_a_stale_backup_is_refused_when_the_runbook_takes_no_snapshot(
    cluster: LocalCluster, etcd_snapshots: tuple[Path, Path]
) -> None:
    directory, etcdutl = etcd_snapshots
    backups = BackupCheckParams(
        target=KubeTarget(kubeconfig=cluster.kubeconfig),
        velero_namespace=None,
        etcd_snapshots=directory,
        etcdutl=etcdutl,
    )
    rpo = dt.timedelta(hours=24)
    fresh = preflight(cluster, next_minor(cluster), own_snapshot=None, backups=backups, rpo=rpo)
    assert problems(fresh) == {}, fresh.to_text()

    old = time.time() - 30 * 3600
    os.utime(directory / "etcd-1.db", (old, old))
    report = preflight(cluster, next_minor(cluster), own_snapshot=None, backups=backups, rpo=rpo)
    assert problems(report) == {"upgrade.backup": "fail"}, report.to_text()
    assert "written 30h ago, older than the RPO 24h" in evidence(report, "upgrade.backup")

    accepted = apply_skips(report, ["upgrade.backup"])
    assert accepted.exit_code == 0
    assert evidence(accepted, "upgrade.backup").startswith("accepted by --skip-check (was fail)")


def test_a_budget_at_zero_and_a_workload_with_nowhere_to_go_are_named(
    cluster: LocalCluster, node_group: Any, namespace: str
) -> None:
    group: NodeGroup = settled(cluster, node_group(2))
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")

    report = preflight(cluster, next_minor(cluster), selector=group.selector, max_unavailable="2")
    assert problems(report) == {"upgrade.budgets": "fail", "upgrade.room": "fail"}, report.to_text()
    assert (
        f"PodDisruptionBudget {namespace}/api-pdb (0 disruptions allowed, 1/1 healthy, needs 1)"
        in evidence(report, "upgrade.budgets")
    )
    assert f"would leave 1 pod(s) with nowhere to go ({namespace}/api-" in evidence(
        report, "upgrade.room"
    )
    one_at_a_time = preflight(
        cluster, next_minor(cluster), selector=group.selector, max_unavailable="1"
    )
    assert problems(one_at_a_time) == {"upgrade.budgets": "fail"}
    # at once, not with the namespace: a session on a kept cluster starts with a healthy one
    cluster.policy.delete_namespaced_pod_disruption_budget("api-pdb", namespace)
