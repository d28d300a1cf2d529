"""The `job` action never mistakes another node's (or another run's) Job for its own.

GKE-style pools name nodes alike up to the last few characters; each node must get its own Job,
and each Job must be waited on. A Job that merely has the expected name is adopted only when its
metadata says it is this run's Job for this node.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from flows.rolling_maintenance import run_local
from runbooks.cluster.kwok_job_exit import JOB_EXIT_ANNOTATION
from runbooks.kube_target import KubeTarget
from tasks.kube.jobs import JobFailed, job_name, render_job, run_job
from tests.cluster.test_maintenance_helpers import node_state, params
from tests.conftest import NodeGroup

pytestmark = pytest.mark.cluster


@pytest.fixture
def long_named_nodes(cluster) -> Iterator[Callable[[int], NodeGroup]]:
    """Ready nodes whose names share their first 40+ characters, as in one GKE node pool."""
    from runbooks.cluster.nodes import add_nodes, wait_nodes_ready

    created: list[str] = []

    def make(count: int) -> NodeGroup:
        group = uuid.uuid4().hex[:6]
        pool = f"gke-prod-eu1-default-pool-{group}-5f3c9a7e-"  # 42 characters
        names = [f"{pool}{i:04d}" for i in range(1, count + 1)]
        label = ("kube-runbooks.test/group", group)
        add_nodes(cluster.kubeconfig, names=names, labels={label[0]: label[1]})
        created.extend(names)
        wait_nodes_ready(cluster.kubeconfig, names)
        return NodeGroup(names=names, label=label)

    yield make
    for name in created:
        try:
            cluster.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_nodes_named_alike_past_40_characters_each_get_their_own_job_and_wait_on_it(
    cluster, long_named_nodes, namespace
) -> None:
    group = long_named_nodes(2)
    assert group.names[0][:40] == group.names[1][:40]
    action = {"kind": "job", "job_namespace": namespace, "command": "echo patching {node}"}

    report = run_local(params(cluster, group, action=action, max_unavailable="2"))

    assert report.status == "succeeded", report.message
    assert [r.result for r in report.nodes] == ["maintained", "maintained"]
    jobs = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert sorted(j.spec.template.spec.node_name for j in jobs) == sorted(group.names)
    assert all(j.status.succeeded == 1 for j in jobs), [j.status for j in jobs]
    for job in jobs:
        node = job.spec.template.spec.node_name
        assert job.metadata.annotations["kube-runbooks.io/node-name"] == node
        assert job.metadata.annotations["kube-runbooks.io/run-id"] == report.run_id
        assert job.metadata.name == job_name(node, report.run_id)
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def _foreign(node: str, run_id: str, namespace: str) -> dict:
    """Jobs that carry the name this run would give its Job on ``node``, but are not it."""
    other_run = render_job(node, "local-0ther0run0000", namespace, "busybox", ["true"], 60)
    other_node = render_job(node + "x", run_id, namespace, "busybox", ["true"], 60)
    other_node["spec"]["template"]["spec"]["nodeName"] = node
    someone = render_job(node, run_id, namespace, "busybox", ["true"], 60)
    del someone["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    return {"another run's": other_run, "another node's": other_node, "someone else's": someone}


@pytest.mark.parametrize("whose", ["another run's", "another node's", "someone else's"])
def test_a_job_of_the_same_name_that_is_not_this_runs_fails_the_node(
    cluster, node_group, namespace, whose: str
) -> None:
    (node,) = node_group(1).names
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    ours = render_job(node, run_id, namespace, "busybox", ["echo", "ours"], 60)
    theirs = _foreign(node, run_id, namespace)[whose]
    theirs["metadata"]["name"] = ours["metadata"]["name"]  # a name collision, as before the fix
    batch = client.BatchV1Api(cluster.api)
    batch.create_namespaced_job(namespace, theirs)

    with pytest.raises(JobFailed) as failed:
        run_job(KubeTarget(kubeconfig=cluster.kubeconfig), ours, timeout=60)

    message = str(failed.value)
    if whose == "another run's":  # still active on the node: refused before the create
        assert f"job {namespace}/{ours['metadata']['name']} of run local-0ther0run0000" in message
    else:
        assert f"job {namespace}/{ours['metadata']['name']} already exists" in message
        assert f"not run {run_id}'s Job for node {node}" in message
    assert f"the action was not run on {node}" in message
    left = batch.read_namespaced_job(ours["metadata"]["name"], namespace)
    assert left.metadata.uid  # untouched: never deleted or replaced
    assert left.spec.template.spec.containers[0].command == ["true"]


def test_a_rerun_adopts_the_job_its_crashed_attempt_made_for_the_node(
    cluster, node_group, namespace
) -> None:
    (node,) = node_group(1).names
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    manifest = render_job(node, run_id, namespace, "busybox", ["echo", "hi"], 60)
    created = client.BatchV1Api(cluster.api).create_namespaced_job(namespace, manifest)

    summary = run_job(KubeTarget(kubeconfig=cluster.kubeconfig), manifest, timeout=60)

    assert summary == f"job {namespace}/{manifest['metadata']['name']} completed"
    jobs = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert [j.metadata.uid for j in jobs] == [created.metadata.uid]


def _other_runs_job(cluster, node: str, namespace: str, exit_code: str) -> client.V1Job:
    """The Job run "other-run" made for ``node`` (as a crashed CLI run leaves it). KWOK keeps its
    pod Running while the exit annotation says "hold"; "0" ends it at once, exit code 0."""
    manifest = render_job(node, "other-run", namespace, "busybox", ["sleep", "3600"], 600)
    manifest["spec"]["template"]["metadata"]["annotations"] = {JOB_EXIT_ANNOTATION: exit_code}
    return client.BatchV1Api(cluster.api).create_namespaced_job(namespace, manifest)


def _wait_complete(cluster, name: str, namespace: str) -> None:
    batch = client.BatchV1Api(cluster.api)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = batch.read_namespaced_job(name, namespace)
        if any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []):
            return
        time.sleep(0.2)
    raise AssertionError(f"job {namespace}/{name} did not complete: {job.status}")


def test_a_rerun_does_not_start_a_second_job_on_a_node_where_another_runs_job_still_runs(
    cluster, node_group, namespace
) -> None:
    (node,) = node_group(1).names
    theirs = _other_runs_job(cluster, node, namespace, exit_code="hold")
    ours = render_job(node, f"local-{uuid.uuid4().hex[:12]}", namespace, "busybox", ["true"], 60)

    with pytest.raises(JobFailed) as failed:
        run_job(KubeTarget(kubeconfig=cluster.kubeconfig), ours, timeout=60)

    error = str(failed.value)
    assert "\n" not in error
    assert f"job {namespace}/{theirs.metadata.name} of run other-run" in error
    assert f"the action was not run on {node}" in error
    assert f"kubectl -n {namespace} delete job {theirs.metadata.name}" in error
    jobs = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert [j.metadata.uid for j in jobs] == [theirs.metadata.uid]


def test_a_finished_job_of_another_run_does_not_block_the_node(
    cluster, node_group, namespace
) -> None:
    group = node_group(1)
    (node,) = group.names
    theirs = _other_runs_job(cluster, node, namespace, exit_code="0")
    _wait_complete(cluster, theirs.metadata.name, namespace)
    action = {"kind": "job", "job_namespace": namespace, "command": "echo patching {node}"}

    report = run_local(params(cluster, group, action=action))

    assert report.status == "succeeded", report.message
    assert [r.result for r in report.nodes] == ["maintained"]
    jobs = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert sorted(j.metadata.name for j in jobs) == sorted(
        [theirs.metadata.name, job_name(node, report.run_id)]
    )


def test_a_rerun_leaves_the_running_maintenance_pod_alone_and_stops_at_the_node(
    cluster, node_group, namespace
) -> None:
    """After a crash mid-action, the rerun's drain must not evict the old run's maintenance pod
    (a patch or reboot half done), and its action must not start a second Job."""
    group = node_group(1)
    (node,) = group.names
    theirs = _other_runs_job(cluster, node, namespace, exit_code="hold")
    core = client.CoreV1Api(cluster.api)
    selector = f"job-name={theirs.metadata.name}"
    deadline = time.monotonic() + 30
    while not core.list_namespaced_pod(namespace, label_selector=selector).items:
        assert time.monotonic() < deadline, "the other run's Job made no pod"
        time.sleep(0.2)
    (pod_before,) = core.list_namespaced_pod(namespace, label_selector=selector).items
    action = {"kind": "job", "job_namespace": namespace, "command": "echo patching {node}"}

    report = run_local(params(cluster, group, action=action))

    assert report.status == "halted", report.message
    (result,) = report.nodes
    assert result.failed_step == "action"
    assert f"job {namespace}/{theirs.metadata.name} of run other-run" in (result.error or "")
    (pod_after,) = core.list_namespaced_pod(namespace, label_selector=selector).items
    assert pod_after.metadata.uid == pod_before.metadata.uid
    assert pod_after.metadata.deletion_timestamp is None
    jobs = client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items
    assert [j.metadata.uid for j in jobs] == [theirs.metadata.uid]
