"""A `runbook serve` stack (Prefect server, deployments, process worker) on the local cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun

from tests.deployments.stack import ServedStack


@pytest.fixture(scope="session")
def served(cluster, tmp_path_factory) -> Iterator[ServedStack]:
    """`runbook serve` with its own Prefect home (SQLite), acting on the local cluster."""
    stack = ServedStack(
        tmp_path_factory.mktemp("prefect-home"),
        # the scheduler looks for due schedules every 5 s instead of 60 s
        {
            "KUBECONFIG": str(cluster.kubeconfig),
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        },
        ["--no-listener"],
    )
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


def run_by_name(url: str, name: str, parameters: dict[str, Any], timeout: float = 300) -> FlowRun:
    """Start a run of deployment ``name`` and wait until it is final, as `run_deployment` does."""
    from prefect.deployments import run_deployment

    with prefect_api(url):
        run = run_deployment(name, parameters=parameters, timeout=timeout, tags=["trigger:test"])
    assert isinstance(run, FlowRun)
    return run


@contextmanager
def prefect_api(url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` (the test's own server)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        yield


def report_markdown(url: str, flow_run_id: Any) -> str:
    """The run's Markdown report artifact, as the UI shows it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_api(url), get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return "\n".join(str(a.data) for a in artifacts if a.key == "rolling-node-maintenance-report")


def node_results(report: str) -> dict[str, str]:
    """Node -> result, from the report's table."""
    rows = [line.split("|") for line in report.splitlines() if line.startswith("| ")]
    table = {cells[1].strip(): cells[2].strip() for cells in rows if len(cells) > 3}
    table.pop("Node", None)  # the header row
    return table
