"""deployments/prefect.yaml on a real Prefect server: registered by `prefect deploy --all`
(through `runbook serve`), run by deployment name by a process worker, on the local cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments import run_deployment

from runbooks.cluster import workloads
from tests.deployments.conftest import prefect_api, report_markdown, run_by_name
from tests.deployments.stack import ServedStack, pid_alive

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PREFECT_FILE = Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml"
ON_DEMAND = "rolling-node-maintenance/on-demand"


def declared() -> list[dict]:
    return list(yaml.safe_load(PREFECT_FILE.read_text())["deployments"])


def test_prefect_deploy_registers_every_declared_runbook_with_a_described_form(
    served: ServedStack,
) -> None:
    with prefect_api(served.api_url), get_client(sync_client=True) as client:
        found = {}
        for deployment in client.read_deployments():
            flow = client.read_flow(deployment.flow_id)
            found[f"{flow.name}/{deployment.name}"] = deployment
    assert len(found) == len(declared())
    for name, deployment in found.items():
        assert "runbook" in deployment.tags, name
        assert deployment.description, name
        assert deployment.work_pool_name == "runbooks-process", name
        assert deployment.enforce_parameter_schema, name
        schema = deployment.parameter_openapi_schema or {}
        models = schema.get("definitions", {})
        undescribed = [
            f"{model}.{field}"
            for model, body in models.items()
            for field, prop in body.get("properties", {}).items()
            if not prop.get("description") and "$ref" not in prop and "allOf" not in prop
        ]
        assert not undescribed, f"{name}: form fields without a description: {undescribed}"
    [weekly] = found["rolling-node-maintenance/weekly-window"].schedules
    assert weekly.active is False  # operators turn it on for their cluster
    assert isinstance(weekly.schedule, CronSchedule)
    assert (weekly.schedule.cron, weekly.schedule.timezone) == ("0 1 * * 6", "Europe/Berlin")


def test_wrong_parameters_are_refused_before_any_run_starts(served: ServedStack) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    with prefect_api(served.api_url), pytest.raises(PrefectHTTPStatusError) as refused:
        run_deployment(ON_DEMAND, parameters={"params": {"nodes": "not-a-list"}}, timeout=0)
    assert refused.value.response.status_code == 409
    assert "Validation failed for field 'params.nodes'" in refused.value.response.text


def test_rolling_maintenance_runs_by_deployment_name_on_the_local_cluster(
    served: ServedStack, cluster, node_group, namespace: str
) -> None:
    group = node_group(2)
    workloads.create_deployment(
        cluster.api,
        namespace,
        "web",
        replicas=2,
        node_selector=group.node_selector,
        min_available=1,
    )
    workloads.wait_pods_ready(cluster.api, namespace, expected=2)
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")

    began = time.monotonic()
    run = run_by_name(
        served.api_url, ON_DEMAND, {"params": {"nodes": group.names, "dry_run": False}}
    )
    took = time.monotonic() - began

    assert run.state is not None
    assert run.state.type == StateType.COMPLETED, f"{run.state}: {served.tail(30)}"
    for node in group.names:
        assert not cluster.core.read_node(node).spec.unschedulable, node
    workloads.wait_pods_ready(cluster.api, namespace, expected=2)
    assert report_markdown(served.api_url, run.id).startswith(
        "## Rolling node maintenance: succeeded"
    )
    print(f"run by deployment name: {took:.1f}s from request to Completed")


def test_in_cluster_deployments_are_accepted_and_serve_stops_everything_it_started(
    cluster, tmp_path: Path
) -> None:
    stack = ServedStack(tmp_path, {"KUBECONFIG": str(cluster.kubeconfig)}, ["--no-deploy"])
    stack.wait_ready()
    running = {name: pid for name, pid in stack.children.items() if pid_alive(pid)}
    assert set(running) == {"server", "worker"}
    in_cluster = PREFECT_FILE.parent / "kubernetes" / "prefect.yaml"
    deploy = ["--no-prompt", "deploy", "--all", "--prefect-file", str(in_cluster)]
    deployed = subprocess.run(
        [sys.executable, "-m", "prefect", *deploy],
        cwd=PREFECT_FILE.parents[1],
        env={**os.environ, "PREFECT_API_URL": stack.api_url, "PREFECT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]

    code, took = stack.stop()

    assert code == 0, stack.tail()
    assert [name for name, pid in running.items() if pid_alive(pid)] == []
    assert took < 30, f"took {took:.1f}s to stop"
