"""A run that a Prefect worker started, stopped the way operators stop it (Cancel in the UI),
ends like a CLI run stopped with Ctrl-C: the steps in flight stop, the Lease is released, the
interruption is in the audit trail, and the next run finishes the node. Also: where the Lease
lives (``--lease-namespace``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.audit import RecordFilter, get_store
from runbooks.cluster import workloads
from tests.cluster.test_maintenance_helpers import cli, node_state, wait_for
from tests.deployments.stack import pid_alive

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = "flows/rolling_maintenance.py:rolling_node_maintenance"


@pytest.fixture
def audit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private audit store, for this process and every process it starts."""
    from runbooks.settings import get_settings

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def worker(prefect_server: str, audit_env: str, tmp_path: Path) -> Iterator[str]:
    """A process work pool, the maintenance deployment in it, and `prefect worker start` for
    it, as `runbook serve` runs them; yields the deployment id. The worker is stopped by PID."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import RunnerDeployment

    pool = f"maint-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as prefect:
        prefect.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    deployment = RunnerDeployment.from_entrypoint(
        str(ROOT / ENTRYPOINT),
        name=pool,
        work_pool_name=pool,
        job_variables={"working_dir": str(ROOT)},
    )
    deployment_id = str(deployment.apply())
    env = {
        **os.environ,  # PREFECT_API_URL of the test server, the audit store, the state dir
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopping it reaches the worker only
    )
    try:
        yield deployment_id
    finally:
        for sig, grace in ((signal.SIGINT, 20), (signal.SIGINT, 10), (signal.SIGKILL, 10)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        log.close()


def lease_holder_pid(cluster: Any, name: str, namespace: str = "kube-system") -> int | None:
    """The PID in the Lease's holder identity ("... (user@host, pid 123)"), if it is held."""
    try:
        lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    found = re.search(r"pid (\d+)\)$", lease.spec.holder_identity or "")
    return int(found.group(1)) if found else None


def lease_holder(cluster: Any, name: str, namespace: str = "kube-system") -> str | None:
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(name, namespace)
    return lease.spec.holder_identity


def records(run_id: str, action: str | None = None) -> list[Any]:
    return get_store().records(RecordFilter(flow_run_id=run_id, action=action))


def test_cancelling_a_worker_run_mid_drain_stops_it_at_once_and_the_next_run_finishes_the_node(
    cluster, node_group, namespace, worker
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import State

    group = node_group(2)
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )  # a budget that allows no disruption: the drain blocks
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    node = pod.spec.node_name
    lease = f"maint-{uuid.uuid4().hex[:8]}"
    parameters = {
        "params": {
            "target": {"kubeconfig": str(cluster.kubeconfig)},
            "nodes": [node],
            "drain_timeout": "300s",
            "lease": {"name": lease, "duration": "60s"},  # expiry cannot pass for a release
        }
    }
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.create_flow_run_from_deployment(worker, parameters=parameters)
    run_id = str(flow_run.id)
    pid = None
    try:
        wait_for(
            lambda: any(r.details.get("answer") == "blocked-by-budget" for r in records(run_id)),
            timeout=120,
            what="the worker's run draining, its eviction refused by the budget",
        )
        pid = lease_holder_pid(cluster, lease)
        assert pid is not None and pid_alive(pid)

        with get_client(sync_client=True) as prefect:  # what Cancel in the UI does
            answer = prefect.set_flow_run_state(flow_run.id, State(type=StateType.CANCELLING))
        assert answer.status == SetStateStatus.ACCEPT
        cancelled_at = time.monotonic()
        wait_for(lambda: not pid_alive(pid), timeout=60, what="exit of the cancelled run")
        stopped_after = time.monotonic() - cancelled_at
    finally:
        if pid is not None and pid_alive(pid):  # whatever happened, leave no process behind
            os.kill(pid, signal.SIGKILL)

    # At its drain's next turn: not after the drain timeout, nor killed by the worker after 30 s.
    assert stopped_after < 20, f"the cancelled run took {stopped_after:.0f}s to stop"
    assert lease_holder(cluster, lease) is None  # released, not left to expire
    trail = records(run_id)
    released = next(r.seq for r in trail if r.action == "lease.release" and r.phase == "outcome")
    assert not [r for r in trail if r.action == "pod.evict" and r.seq > released]  # no eviction
    (finish,) = [r for r in trail if r.action == "run.finish"]  # after the lock was given up
    assert finish.outcome == "interrupted" and finish.seq > released
    assert finish.details["not_finished"] == [node]
    assert node_state(cluster, [node]) == {node: (True, run_id)}  # cordoned, marked as ours
    with get_client(sync_client=True) as prefect:
        wait_for(
            lambda: prefect.read_flow_run(flow_run.id).state_type == StateType.CANCELLED,
            timeout=30,
            what="the run shown as Cancelled",
        )

    cluster.policy.patch_namespaced_pod_disruption_budget(
        "api-pdb", namespace, {"spec": {"minAvailable": 0}}
    )
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    rerun = cli(cluster, node, "--lease-name", lease, "--lease-duration", "60s", "--output", "json")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (result,) = json.loads(rerun.stdout)["nodes"]
    assert result["result"] == "maintained"
    assert any("earlier run" in note for note in result["notes"])  # it took over our cordon
    assert node_state(cluster, [node]) == {node: (False, None)}
    assert lease_holder(cluster, lease) is None


def test_lease_namespace_puts_the_lease_in_that_namespace(cluster, node_group, namespace):
    group = node_group(1)
    lease = f"maint-{uuid.uuid4().hex[:8]}"

    done = cli(cluster, *group.names, "--lease-name", lease, "--lease-namespace", namespace)

    assert done.returncode == 0, done.stdout + done.stderr
    leases = client.CoordinationV1Api(cluster.api)
    assert leases.read_namespaced_lease(lease, namespace).spec.holder_identity is None  # released
    with pytest.raises(ApiException) as missing:
        leases.read_namespaced_lease(lease, "kube-system")
    assert missing.value.status == 404
    assert node_state(cluster, group.names) == {group.names[0]: (False, None)}


@pytest.mark.parametrize(
    ("namespace_arg", "message"),
    [
        (
            "no-such-namespace",
            "cannot take Lease no-such-namespace/{lease}: namespace no-such-namespace does not "
            "exist (create it, or name another with --lease-namespace); nothing was changed",
        ),
        (
            "Kube_System",
            "--lease-namespace 'Kube_System' is not a namespace name (lowercase letters, digits "
            "and '-', at most 63)",
        ),
    ],
)
def test_bad_lease_namespace_exits_2_in_one_line_and_changes_nothing(
    cluster, node_group, namespace_arg, message
):
    group = node_group(1)
    lease = f"maint-{uuid.uuid4().hex[:8]}"

    done = cli(cluster, *group.names, "--lease-name", lease, "--lease-namespace", namespace_arg)

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {message.format(lease=lease)}"  # one line
    assert node_state(cluster, group.names) == {group.names[0]: (False, None)}  # not cordoned
    assert not [
        item
        for item in client.CoordinationV1Api(cluster.api)
        .list_lease_for_all_namespaces(field_selector=f"metadata.name={lease}")
        .items
    ]
