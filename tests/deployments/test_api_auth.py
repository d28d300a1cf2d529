"""Prefect's API authentication on, as docs/operations.md says to run it: `runbook serve` with
PREFECT_SERVER_API_AUTH_STRING on the server and PREFECT_API_AUTH_STRING on its clients. Who
does not have it cannot start or even list runs; with it, the deployments work, and a live run
of a deployment carrying `approval: {}` is refused when the operator configured no policy
(it never runs ungated)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from tests.deployments.stack import ServedStack

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

AUTH = f"runbooks:{uuid.uuid4().hex}"
ON_DEMAND = "rolling-node-maintenance/on-demand"


@pytest.fixture(scope="module")
def authed(cluster, tmp_path_factory) -> Iterator[ServedStack]:
    stack = ServedStack(
        tmp_path_factory.mktemp("prefect-home-auth"),
        {
            "KUBECONFIG": str(cluster.kubeconfig),
            "PREFECT_SERVER_API_AUTH_STRING": AUTH,
            "PREFECT_API_AUTH_STRING": AUTH,
        },
        ["--no-listener"],
    )
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def test_without_the_auth_string_nobody_can_list_or_start_runs(authed: ServedStack) -> None:
    for path in ("/deployments/filter", "/flow_runs/filter"):
        answer = httpx.post(authed.api_url + path, json={}, timeout=10)
        assert answer.status_code == 401, (path, answer.text)
    wrong = httpx.post(
        authed.api_url + "/flow_runs/filter", json={}, auth=("runbooks", "guess"), timeout=10
    )
    assert wrong.status_code == 401


def test_with_it_a_live_deployment_run_is_held_to_the_operators_policy(
    authed: ServedStack, cluster, node_group
) -> None:
    from prefect.deployments import run_deployment

    group = node_group(1)
    with temporary_settings({PREFECT_API_URL: authed.api_url, PREFECT_API_AUTH_STRING: AUTH}):
        run = run_deployment(
            ON_DEMAND,
            parameters={"params": {"nodes": group.names, "dry_run": False, "approval": {}}},
            timeout=240,
        )
    assert isinstance(run, FlowRun) and run.state is not None
    assert run.state.type == StateType.FAILED, f"{run.state}: {authed.tail(30)}"
    assert "has no approval policy for rolling-node-maintenance" in str(run.state.message)
    assert not cluster.core.read_node(group.names[0]).spec.unschedulable
