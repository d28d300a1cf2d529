"""The maintenance Lease against the real local control plane: a run that loses it stops
changing the cluster, another holder's clock is never trusted, a holder killed on this machine
does not hold up the rerun, and ``--wait-for-lease`` waits instead of halting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from flows.rolling_maintenance import run_local
from runbooks.audit import RecordFilter, get_store
from runbooks.cluster import workloads
from runbooks.maintenance.report import MaintenanceReport
from tests.cluster.test_maintenance_helpers import (
    RUNBOOK,
    UnschedulableWatcher,
    cli,
    node_state,
    params,
    pod_uids,
    wait_for,
)

pytestmark = pytest.mark.cluster
NAMESPACE = "kube-system"
FOREIGN = "rolling-node-maintenance run elsewhere-1 (bob@another-host, pid 77)"


def leases(cluster: Any) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(cluster.api)


def read_lease(cluster: Any, name: str) -> client.V1Lease:
    return leases(cluster).read_namespaced_lease(name, NAMESPACE)


def blocked_setup(cluster: Any, group: Any, namespace: str) -> str:
    """One pod whose budget refuses its eviction; returns the node it runs on."""
    workloads.create_deployment(
        cluster.api, namespace, "api", 1, group.node_selector, min_available=1
    )
    (pod,) = workloads.wait_pods_ready(cluster.api, namespace, 1)
    workloads.wait_pdb_observed(cluster.api, namespace, "api-pdb")
    return pod.spec.node_name


def free_budget(cluster: Any, namespace: str) -> None:
    cluster.policy.patch_namespaced_pod_disruption_budget(
        "api-pdb", namespace, {"spec": {"minAvailable": 0}}
    )


class ForeignHolder:
    """Another maintenance holding a Lease from another machine, whose clock is an hour
    behind ours: every renewal moves renewTime, which still reads an hour old to us."""

    def __init__(self, cluster: Any, name: str, duration: int, skew: timedelta) -> None:
        self.cluster, self.name, self.duration, self.skew = cluster, name, duration, skew
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self.renewals = 0

    def _spec(self) -> client.V1LeaseSpec:
        now = datetime.now(UTC) - self.skew
        return client.V1LeaseSpec(
            holder_identity=FOREIGN,
            lease_duration_seconds=self.duration,
            acquire_time=now,
            renew_time=now,
        )

    def take(self) -> None:
        """Take the Lease (create it, or overwrite whoever holds it)."""
        try:
            lease = read_lease(self.cluster, self.name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=self._spec())
            leases(self.cluster).create_namespaced_lease(NAMESPACE, body)
            return
        lease.spec = self._spec()
        leases(self.cluster).replace_namespaced_lease(self.name, NAMESPACE, lease)

    def _renew(self) -> None:
        while not self._stop.wait(1.0):
            lease = read_lease(self.cluster, self.name)
            lease.spec.renew_time = datetime.now(UTC) - self.skew
            leases(self.cluster).replace_namespaced_lease(self.name, NAMESPACE, lease)
            self.renewals += 1

    def renewing(self) -> ForeignHolder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


@pytest.fixture
def foreign() -> Iterator[list[ForeignHolder]]:
    holders: list[ForeignHolder] = []
    yield holders
    for holder in holders:
        holder.stop()


def trail(after_seq: int = 0) -> list[Any]:
    return [r for r in get_store().records(RecordFilter()) if r.seq > after_seq]


def last_seq() -> int:
    records = get_store().records(RecordFilter())
    return max((r.seq for r in records), default=0)


def test_lease_taken_by_another_holder_mid_run_stops_the_run_before_its_next_change(
    cluster, node_group, namespace, foreign
):
    group = node_group(3)
    node = blocked_setup(cluster, group, namespace)
    order = [node] + [n for n in group.names if n != node]
    pods_on_node = {n: u for n, u in pod_uids(cluster, namespace).items() if n.startswith("api-")}
    name = f"maint-{uuid.uuid4().hex[:8]}"
    run = params(
        cluster,
        group,
        nodes=order,
        selector=None,
        drain_timeout="120s",
        lease={"name": name, "duration": "6s"},  # renewed every 2 s
    )
    result: list[MaintenanceReport] = []
    thread = threading.Thread(target=lambda: result.append(run_local(run)))
    with UnschedulableWatcher(cluster, group.selector) as watcher:
        thread.start()
        wait_for(lambda: node_state(cluster, [node])[node][0], what="the run cordons the node")
        time.sleep(1.0)  # mid-drain: the budget refuses the eviction, retried in 5-30 s
        other = ForeignHolder(cluster, run.lease.name, 6, timedelta(0))
        other.take()  # another maintenance takes the cluster
        taken = time.monotonic()
        time.sleep(4.0)  # the run's next renewal (2 s) has seen it by now
        free_budget(cluster, namespace)  # an eviction would now succeed: none may be tried
        thread.join(timeout=60)
        stopped_after = time.monotonic() - taken
    assert result, "the run did not end within 60 s of losing its Lease"
    (report,) = result

    assert pod_uids(cluster, namespace).items() >= pods_on_node.items()  # nothing evicted
    assert watcher.ever_out == {node}  # no further cordon
    assert node_state(cluster, [node])[node][0]  # left as it was: cordoned, for the holder
    assert report.status == "halted"
    assert "lease lost" in report.message and FOREIGN in report.message
    assert stopped_after < 15  # at the drain's next turn, not at its 120 s timeout
    records = trail()
    (lost,) = [r for r in records if r.action == "lease.lost" and r.target.endswith(run.lease.name)]
    after = [r for r in records if r.seq > lost.seq and r.flow_run_id == lost.flow_run_id]
    changes = [r for r in after if r.action in ("node.cordon", "pod.evict", "node.uncordon")]
    assert changes == []
    assert read_lease(cluster, run.lease.name).spec.holder_identity == FOREIGN  # not released


def test_a_foreign_holder_with_a_skewed_clock_is_not_taken_over_while_it_renews(
    cluster, node_group, namespace, foreign
):
    group = node_group(2)
    name = f"maint-{uuid.uuid4().hex[:8]}"
    run = params(cluster, group, lease={"name": name, "duration": "5s"})
    # renewTime an hour in our past, as a holder whose clock is behind writes it
    holder = ForeignHolder(cluster, run.lease.name, 5, timedelta(hours=1))
    foreign.append(holder)
    holder.take()
    holder.renewing()

    refused = run_local(run)  # no wait: refused at once, saying how long and how to wait

    assert refused.status == "halted"
    assert f"held by {FOREIGN}" in refused.message
    assert "expires in 5s by this machine's clock unless renewed" in refused.message
    assert "--wait-for-lease" in refused.message and "nothing was changed" in refused.message

    # waiting more than twice its duration
    run = params(cluster, group, lease={"name": name, "duration": "5s", "wait": "12s"})
    started = time.monotonic()
    waited = run_local(run)

    assert waited.status == "halted" and f"held by {FOREIGN}" in waited.message
    assert time.monotonic() - started >= 12
    assert holder.renewals >= 10
    assert read_lease(cluster, run.lease.name).spec.holder_identity == FOREIGN
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_a_holder_killed_on_this_machine_is_taken_over_at_once_and_the_takeover_audited(
    cluster, node_group, namespace
):
    group = node_group(3)
    node = blocked_setup(cluster, group, namespace)
    order = [node] + [n for n in group.names if n != node]
    name = f"maint-{uuid.uuid4().hex[:8]}"
    lease = ["--lease-name", name, "--lease-duration", "5m"]  # it would hold up a rerun 5 min
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    first = subprocess.Popen(
        [RUNBOOK, "maintain", "--kubeconfig", str(cluster.kubeconfig), *order, *lease],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: node_state(cluster, [node])[node][0], what="the run cordons the node")
        time.sleep(1.0)
        dead = read_lease(cluster, name).spec.holder_identity
        assert f"pid {first.pid})" in dead
        os.kill(first.pid, signal.SIGKILL)  # kill -9 in the terminal
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    free_budget(cluster, namespace)
    before = last_seq()

    started = time.monotonic()
    rerun = cli(cluster, *order, "--output", "json", *lease)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(rerun.stdout)["status"] == "succeeded"
    assert time.monotonic() - started < 60  # not the 5 min the dead run's Lease had left
    (takeover,) = [r for r in trail(before) if r.action == "lease.takeover"]
    assert takeover.target.endswith(name)
    assert takeover.details["previous_holder"] == dead
    assert f"pid {first.pid}" in takeover.details["takeover"]
    assert "gone" in takeover.details["takeover"]
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    assert read_lease(cluster, name).spec.holder_identity is None  # released at the end


def test_wait_for_lease_waits_for_the_holder_to_stop_renewing_and_then_proceeds(
    cluster, node_group, namespace, foreign
):
    group = node_group(2)
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    name = f"maint-{uuid.uuid4().hex[:8]}"
    run = params(cluster, group, lease={"name": name, "duration": "10s", "wait": "45s"})
    holder = ForeignHolder(cluster, run.lease.name, 5, timedelta(0))
    foreign.append(holder)
    holder.take()
    holder.renewing()
    threading.Timer(4.0, holder.stop).start()  # the other run dies 4 s from now
    before = last_seq()

    started = time.monotonic()
    report = run_local(run)
    took = time.monotonic() - started

    assert report.status == "succeeded", report.message
    assert [r.result for r in report.nodes] == ["maintained", "maintained"]
    assert took >= 4 + 5 - 1.5  # not while it renewed: 5 s after its last renewal, by our clock
    (takeover,) = [r for r in trail(before) if r.action == "lease.takeover"]
    assert takeover.details["previous_holder"] == FOREIGN
    assert "not renewed for 5s" in takeover.details["takeover"]
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_lease_lost_during_the_action_stops_it_like_an_interrupt_and_uncordons_nothing(
    cluster, node_group, foreign
):
    group = node_group(2)
    first, second = group.names
    name = f"maint-{uuid.uuid4().hex[:8]}"
    run = params(
        cluster,
        group,
        nodes=[first, second],
        selector=None,
        lease={"name": name, "duration": "6s"},
        action={"kind": "command", "command": "sleep 120", "timeout": "5m"},
    )
    result: list[MaintenanceReport] = []
    thread = threading.Thread(target=lambda: result.append(run_local(run)))
    with UnschedulableWatcher(cluster, group.selector) as watcher:
        thread.start()
        wait_for(lambda: node_state(cluster, [first])[first][0], what="the run cordons")
        time.sleep(2.0)  # no pods to drain: the command is running now
        ForeignHolder(cluster, name, 6, timedelta(0)).take()
        taken = time.monotonic()
        thread.join(timeout=40)
        stopped_after = time.monotonic() - taken
    assert result, "the action ran on after the Lease was lost"
    (report,) = result

    assert stopped_after < 10  # the renewal (2 s) sees it, the command is stopped within 1 s
    assert report.status == "halted" and "lease lost" in report.message
    row = report.result(first)
    assert row is not None and row.failed_step == "action"
    assert "was stopped: the maintenance Lease was lost" in (row.error or "")
    assert watcher.ever_out == {first}
    assert node_state(cluster, [first])[first][0]  # not uncordoned: the new holder decides
