"""A cluster upgrade rejected in Slack changes nothing: the real local control plane, the real
Prefect engine and listener, slack-sdk against the Slack stand-in."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from flows.cluster_upgrade import cluster_upgrade
from runbooks.approvals.listener import Listener
from runbooks.audit import RecordFilter, get_store
from runbooks.cluster.nodes import set_node_info
from runbooks.identity import os_user, started_from_cli
from runbooks.kube_target import KubeTarget
from runbooks.upgrade.params import UpgradeParams
from tests.cluster.test_maintenance_helpers import node_state
from tests.slack.conftest import APPROVERS, approval_message, approval_of, wait_for
from tests.slack.helpers import run_state

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ALICE, BOB = APPROVERS


@pytest.fixture(autouse=True)
def operator_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "operator.yaml"
    path.write_text(
        "approvals:\n"
        "  cluster-upgrade:\n"
        f"    users: [{ALICE}, {BOB}]\n"
        "    timeout: 120s\n"
        "identities:\n"
        f"  {ALICE}: [os-user:alice-not-here]\n"
        f"  {BOB}: [os-user:{os_user()}]\n"
    )
    monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
    return path


def test_upgrade_rejected_in_slack_touches_nothing_and_shows_the_risk_first(
    cluster, node_group, slack, clicks, http_listener: Listener
):
    group = node_group(2)
    for name in group.names:  # behind the API server: the node phase has work to do
        set_node_info(cluster.kubeconfig, name, kubelet_version="v1.35.4")
    server = client.VersionApi(cluster.api).get_code().git_version
    params = UpgradeParams(
        to=server, selector=group.selector, target=KubeTarget(kubeconfig=cluster.kubeconfig)
    )
    out: dict[str, Any] = {}

    def run() -> None:
        with started_from_cli():
            out["state"] = cluster_upgrade(params, return_state=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")
    shown = str(message.blocks)
    assert f"-> {server}" in shown and "Rollback limits" in shown
    assert all(n in shown for n in group.names)  # the node order

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=ALICE, action_id="runbook_reject"),
    )
    thread.join(120)

    state = out["state"]
    assert state.is_failed() and f"rejected by {ALICE}" in state.message
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    assert {n: cluster.core.read_node(n).status.node_info.kubelet_version for n in group.names} == {
        n: "v1.35.4" for n in group.names
    }
    trail = get_store().records(RecordFilter(flow_run_id=approval.flow_run_id))
    assert "run.start" not in [r.action for r in trail]
