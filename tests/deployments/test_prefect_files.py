"""The deployment files cover every runbook flow, and each schedule opens the window it passes.

Fast: reads the YAML and imports the flows; no server. `test_deployments.py` proves that
`prefect deploy --all` accepts the files and runs them.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
import yaml
from prefect import Flow

import flows
from runbooks.window import MaintenanceWindow

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILES = [
    ROOT / "deployments" / "prefect.yaml",
    ROOT / "deployments/kubernetes/prefect.yaml",
]


def runbook_flows() -> dict[str, str]:
    """entrypoint -> flow name, for every Prefect flow defined in flows/."""
    found = {}
    for module in pkgutil.iter_modules(flows.__path__):
        loaded = importlib.import_module(f"flows.{module.name}")
        for attribute, value in vars(loaded).items():
            if isinstance(value, Flow) and value.__module__ == loaded.__name__:
                found[f"flows/{module.name}.py:{attribute}"] = value.name
    return found


def deployments(path: Path) -> list[dict]:
    return list(yaml.safe_load(path.read_text())["deployments"])


@pytest.mark.parametrize("path", PREFECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_runbook_flow_has_an_on_demand_deployment(path: Path) -> None:
    on_demand = {d["entrypoint"] for d in deployments(path) if "on-demand" in d.get("tags", [])}
    assert set(runbook_flows()) <= on_demand


@pytest.mark.parametrize("path", PREFECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deployment_is_described_tagged_and_queued_one_at_a_time(path: Path) -> None:
    for deployment in deployments(path):
        assert deployment["entrypoint"] in runbook_flows(), deployment["name"]
        assert deployment.get("description"), deployment["name"]
        assert "runbook" in deployment.get("tags", []), deployment["name"]
        assert deployment["concurrency_limit"]["limit"] == 1, deployment["name"]


@pytest.mark.parametrize("path", PREFECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_schedule_opens_the_window_its_run_is_given(path: Path) -> None:
    for deployment in deployments(path):
        if not deployment["entrypoint"].startswith("flows/rolling_maintenance.py"):
            schedules = deployment.get("schedules") or []
            assert all(s.get("active") is False for s in schedules), deployment["name"]
            continue  # only maintenance runs in a window
        for schedule in deployment.get("schedules") or []:
            params = {**deployment.get("parameters", {}), **schedule.get("parameters", {})}
            window = MaintenanceWindow.model_validate(params["params"]["window"])
            assert (schedule["cron"], schedule["timezone"]) == (window.cron, window.timezone), (
                f"{deployment['name']}: schedule {schedule['cron']} {schedule['timezone']} "
                f"but window {window}"
            )
            assert schedule.get("active") is False, "ship schedules off; operators turn them on"


@pytest.mark.parametrize("path", PREFECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deployment_that_changes_something_stops_at_an_approval(path: Path) -> None:
    """A scheduled or UI-started live run asks in Slack under the operator's policy; the
    parameters are ones the flow accepts."""
    from runbooks.maintenance.params import MaintenanceParams

    for deployment in deployments(path):
        if not deployment["entrypoint"].startswith("flows/rolling_maintenance.py"):
            continue  # provision verification changes nothing
        for schedule in [{}, *(deployment.get("schedules") or [])]:
            raw = {**deployment.get("parameters", {}), **schedule.get("parameters", {})}
            params = MaintenanceParams.model_validate(raw["params"])
            if not params.dry_run or deployment["name"] == "on-demand":  # unticked in the UI
                assert params.approval is not None, f"{deployment['name']} runs ungated"


def test_in_cluster_clients_authenticate_to_prefect_and_read_the_operator_configuration() -> None:
    """Worker and listener send PREFECT_API_AUTH_STRING from a Secret; the worker reads the
    operator configuration from the ConfigMap, which parses."""
    from runbooks.operator_config import OperatorConfig

    manifests = ROOT / "deployments" / "kubernetes"
    for name in ("worker.yaml", "listener.yaml"):
        docs = yaml.safe_load_all((manifests / name).read_text())
        [deployment] = [d for d in docs if d and d["kind"] == "Deployment"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        secret = env["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "kube-runbooks-prefect", "key": "auth-string"}, name
    worker = yaml.safe_load((manifests / "worker.yaml").read_text())["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    assert env["RUNBOOK_CONFIG"] == "/etc/kube-runbooks/config.yaml"
    [operator] = [
        d
        for d in yaml.safe_load_all((manifests / "config.yaml").read_text())
        if d["metadata"]["name"] == "kube-runbooks-operator"
    ]
    config = OperatorConfig.model_validate(yaml.safe_load(operator["data"]["config.yaml"]))
    assert config.approvals["rolling-node-maintenance"].live_runs_require_approval
