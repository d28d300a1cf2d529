"""A real control-plane upgrade of the local cluster, v1.35.4 -> v1.36.3, on the same etcd data."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from runbooks.cluster import launcher
from runbooks.cluster.upgrade import CONTROL_PLANE, upgrade_control_plane

pytestmark = pytest.mark.cluster

OLD, NEW = "v1.35.4", "v1.36.3"


@pytest.fixture
def old_cluster() -> Iterator[launcher.ClusterRecord]:
    """A cluster of its own on the older version (the session's runs the default one)."""
    name = f"upgrade-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    record = launcher.up(name=name, nodes=1, stop_with_caller=True, kubernetes_version=OLD)
    try:
        yield record
    finally:
        launcher.down(name)


def _version(record: launcher.ClusterRecord) -> str:
    context = launcher._ssl_context(record.directory)
    with urllib.request.urlopen(f"{record.server}/version", context=context, timeout=5) as resp:
        return str(json.load(resp)["gitVersion"])


def _exe(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except FileNotFoundError:
        return None


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="busybox:1.36")]
                ),
            ),
        ),
    )


def _wait_ready(apps: client.AppsV1Api, name: str, replicas: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment(name, "default").status
        if (status.ready_replicas or 0) == replicas:
            return
        time.sleep(0.5)
    raise AssertionError(f"deployment {name} never had {replicas} ready replicas")


def test_a_v1_35_cluster_reports_v1_35_4_from_version_and_its_kubelets(
    old_cluster: launcher.ClusterRecord,
) -> None:
    assert _version(old_cluster) == OLD
    assert launcher.load_record(old_cluster.name).kubernetes_version == OLD  # type: ignore[union-attr]
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(old_cluster.kubeconfig)))
    # A freshly provisioned cluster's kubelets match its control plane (never newer: skew).
    assert {n.status.node_info.kubelet_version for n in core.list_node().items} == {OLD}


def test_control_plane_upgrade_keeps_objects_and_replaces_every_process(
    old_cluster: launcher.ClusterRecord,
) -> None:
    name = old_cluster.name
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(old_cluster.kubeconfig)))
    apps.create_namespaced_deployment("default", _deployment("before-upgrade", 1))
    _wait_ready(apps, "before-upgrade", 1)
    uid = apps.read_namespaced_deployment("before-upgrade", "default").metadata.uid
    old_pids = {c: old_cluster.pids[c] for c in CONTROL_PLANE}
    untouched = {c: old_cluster.pids[c] for c in ("etcd", "kwok")}

    done = upgrade_control_plane(name, NEW, stop_with_caller=True)

    assert [line.split(":")[0] for line in done] == list(CONTROL_PLANE)
    assert _version(old_cluster) == NEW
    assert apps.read_namespaced_deployment("before-upgrade", "default").metadata.uid == uid
    record = launcher.load_record(name)
    assert record is not None and record.kubernetes_version == NEW
    for component in CONTROL_PLANE:
        pid = record.pids[component]
        assert pid != old_pids[component]
        assert _exe(old_pids[component]) is None, f"old {component} still runs"
        exe = _exe(pid)
        assert exe is not None and f"k8s-{NEW}_" in str(exe), (component, exe)
    assert {c: record.pids[c] for c in ("etcd", "kwok")} == untouched
    # The new controller manager and scheduler do their jobs: a scale-up gets pods on nodes.
    apps.patch_namespaced_deployment_scale("before-upgrade", "default", {"spec": {"replicas": 2}})
    _wait_ready(apps, "before-upgrade", 2)

    assert upgrade_control_plane(name, NEW, stop_with_caller=True) == []
    assert launcher.load_record(name).pids == record.pids  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not downgraded"):
        upgrade_control_plane(name, OLD, stop_with_caller=True)
    assert launcher.load_record(name).pids == record.pids  # type: ignore[union-attr]
    assert _version(old_cluster) == NEW

    stopped = launcher.down(name)
    assert sorted(stopped) == sorted(launcher.COMPONENT_ORDER)
    assert all(_exe(pid) is None for pid in record.pids.values())


def test_an_upgrade_interrupted_with_the_apiserver_down_is_finished_by_the_next_call(
    old_cluster: launcher.ClusterRecord,
) -> None:
    record = launcher.load_record(old_cluster.name)
    assert record is not None
    launcher.stop_component(record, "kube-apiserver", grace=1)  # as if killed mid-upgrade
    launcher.save_record(record)

    done = upgrade_control_plane(old_cluster.name, NEW, stop_with_caller=True)

    assert [line.split(":")[0] for line in done] == list(CONTROL_PLANE)
    assert _version(old_cluster) == NEW
    assert launcher.is_up(launcher.load_record(old_cluster.name))  # type: ignore[arg-type]
