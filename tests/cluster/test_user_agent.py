"""The API server's own audit log attributes the runbooks' calls to kube-runbooks/<version>."""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from flows.rolling_maintenance import run_local
from runbooks.cluster.launcher import AUDIT_LOG
from tests.cluster.test_maintenance_helpers import params, wait_for

pytestmark = pytest.mark.cluster


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_the_api_servers_audit_log_names_kube_runbooks_and_its_version_for_a_cordon(
    cluster, node_group
):
    log = cluster.kubeconfig.parent / "logs" / AUDIT_LOG
    if os.environ.get("RUNBOOK_TEST_KUBECONFIG"):
        pytest.skip("a cluster given by RUNBOOK_TEST_KUBECONFIG may keep no audit log")
    # the version from the package metadata, as pip installed it
    expected = f"kube-runbooks/{version('kube-runbooks')}"
    group = node_group(1)
    node = group.names[0]

    report = run_local(params(cluster, group, nodes=[node], selector=None))
    assert report.status == "succeeded", report.message

    def our_node_writes() -> list[dict[str, Any]]:
        return [
            e
            for e in _events(log)
            if e.get("objectRef", {}).get("resource") == "nodes"
            and e.get("objectRef", {}).get("name") == node
            and "subresource" not in e.get("objectRef", {})
            and e.get("verb") == "patch"
            and e.get("userAgent") == expected
        ]

    # the cordon and the uncordon (the node controller's own patches carry its own name)
    wait_for(lambda: len(our_node_writes()) >= 2, what=f"cordon and uncordon of {node} audited")
