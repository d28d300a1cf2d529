"""The audit trail of real maintenance runs on the local control plane: what an auditor asks
afterwards (`audit show --node`, `audit verify`, `history`) is answered from what the run did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbooks.cluster import workloads
from tests.cluster.test_maintenance_helpers import params

pytestmark = pytest.mark.cluster

RUNBOOK = str(Path(sys.executable).parent / "runbook")


@pytest.fixture
def audit_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A private audit store for this test, for this process and the commands it runs."""
    from runbooks.settings import get_settings

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", url)
    get_settings.cache_clear()
    yield {**os.environ, "RUNBOOK_AUDIT_URL": url}
    get_settings.cache_clear()


def runbook(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNBOOK, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def show_node(env: dict[str, str], node: str) -> list[dict[str, Any]]:
    done = runbook(env, "audit", "show", "--node", node, "--output", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_maintenance_run_records_appear_in_audit_show_for_that_node(
    cluster: Any, node_group: Any, namespace: str, audit_env: dict[str, str]
) -> None:
    group = node_group(2)
    sel = group.node_selector
    workloads.create_deployment(cluster.api, namespace, "web", 4, sel, max_unavailable=1)
    pods = workloads.wait_pods_ready(cluster.api, namespace, 4)
    # The scheduler may put all four pods on one node (seen in CI): follow a node that has some.
    node = pods[0].spec.node_name
    pods_before = {
        f"{namespace}/{p.metadata.name}"
        for p in cluster.core.list_namespaced_pod(namespace).items
        if p.spec.node_name == node
    }

    env = {k: v for k, v in audit_env.items() if k != "PREFECT_API_URL"}
    env["RUNBOOK_ACTOR"] = "oncall:dana"
    done = runbook(
        env,
        "maintain",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--selector",
        group.selector,
        "--lease-name",
        f"audit-{group.label[1]}",
        "--lease-duration",
        "10s",
        "--drain-timeout",
        "60s",
        "--ready-timeout",
        "30s",
    )
    assert done.returncode == 0, done.stderr + done.stdout

    records = show_node(env, node)
    steps = [(r["action"], r["phase"], r["outcome"]) for r in records if r["target"] == node]
    assert ("node.cordon", "intent", None) in steps
    assert ("node.cordon", "outcome", "ok") in steps
    assert ("node.uncordon", "outcome", "ok") in steps
    assert steps.index(("node.cordon", "intent", None)) < steps.index(
        ("node.uncordon", "outcome", "ok")
    )
    evicted = {r["target"] for r in records if r["action"] == "pod.evict" and r["outcome"] == "ok"}
    assert pods_before and pods_before <= evicted  # the pods that were on it, and none other
    assert all(r["actor"] == "oncall:dana" for r in records)
    assert len({r["flow_run_id"] for r in records}) == 1
    assert not any(r["open_intent"] for r in records)
    (other,) = (n for n in group.names if n != node)
    assert all(r["target"] != other for r in records)

    table = runbook(env, "audit", "show", "--node", node)
    assert table.returncode == 0 and f"node/{node}" in table.stdout
    assert "node.uncordon" in table.stdout and "pod.evict" in table.stdout
    verify = runbook(env, "audit", "verify")
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stderr


def test_history_lists_a_real_maintenance_flow_run_with_its_state(
    cluster: Any, node_group: Any, namespace: str, prefect_server: str, audit_env: dict[str, str]
) -> None:
    from flows.rolling_maintenance import rolling_node_maintenance
    from tasks.audit import audit_context

    group = node_group(2)  # one node at a time: the evicted pods have the other to go to
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    with audit_context("rolling-node-maintenance", actor="oncall:erin"):
        state = rolling_node_maintenance(params(cluster, group), return_state=True)
    assert state.is_completed(), state.message
    run_id = str(state.state_details.flow_run_id)

    done = runbook(audit_env, "history", "--output", "json")
    assert done.returncode == 0, done.stderr
    runs = {r["flow_run_id"]: r for r in json.loads(done.stdout)["runs"]}
    assert runs[run_id]["status"] == "Completed"
    assert runs[run_id]["started_by"] == "oncall:erin"
    assert runs[run_id]["runbook"] == "rolling-node-maintenance"
    assert runs[run_id]["audit_records"] > 0
    assert runs[run_id]["duration_seconds"] > 0

    shown = runbook(audit_env, "audit", "show", "--run", run_id, "--output", "json")
    actions = {r["action"] for r in json.loads(shown.stdout)}
    assert {"lease.acquire", "node.cordon", "node.uncordon"} <= actions
