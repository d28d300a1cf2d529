"""A run started on a node (RUNBOOK_NODE_NAME) leaves that node alone and maintains the rest."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runbooks.cluster import workloads
from tests.cluster.test_maintenance_helpers import cli, node_state, pods_on

pytestmark = pytest.mark.cluster


def test_the_runs_own_node_is_skipped_untouched(
    cluster: Any, node_group: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = node_group(2)
    own, other = group.names
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    on_own = {p.metadata.uid for p in pods_on(cluster, namespace, own)}
    monkeypatch.setenv("RUNBOOK_NODE_NAME", own)  # as the worker's downward API sets it

    done = cli(
        cluster, "--selector", group.selector, "--output", "json",
        "--lease-name", f"maint-{uuid.uuid4().hex[:8]}", "--lease-duration", "5s",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    results = {n["node"]: n for n in json.loads(done.stdout)["nodes"]}
    assert results[other]["result"] == "maintained"
    assert results[own]["result"] == "skipped"
    assert "RUNBOOK_NODE_NAME" in " ".join(results[own]["notes"])
    assert results[own]["pods_evicted"] == []
    # its pods still run (it took the other node's pods too)
    assert on_own <= {p.metadata.uid for p in pods_on(cluster, namespace, own)}
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
