"""Maintenance windows on a real Prefect server and worker: a run starts no node once its
window has closed, finishes the node in hand, and reports the nodes left for next time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.schemas.objects import StateType

from runbooks.maintenance.ownership import CORDONED_BY_ANNOTATION
from tests.deployments.conftest import node_results, prefect_api, report_markdown, run_by_name
from tests.deployments.stack import ServedStack

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

WEEKLY = "rolling-node-maintenance/weekly-window"


def window_opening_at(opened: datetime, length: str) -> dict[str, str]:
    return {"cron": f"{opened.minute} {opened.hour} * * *", "timezone": "UTC", "length": length}


def untouched(cluster, names: list[str]) -> bool:
    for name in names:
        node = cluster.core.read_node(name)
        annotations = node.metadata.annotations or {}
        if node.spec.unschedulable or CORDONED_BY_ANNOTATION in annotations:
            return False
    return True


def test_run_started_after_its_window_closed_starts_no_node_and_lists_them_for_next_time(
    served: ServedStack, cluster, node_group
) -> None:
    group = node_group(2)
    twelve_hours_ago = datetime.now(UTC) - timedelta(hours=12)

    run = run_by_name(
        served.api_url,
        WEEKLY,
        {
            "params": {
                "nodes": group.names,
                "dry_run": False,
                "window": window_opening_at(twelve_hours_ago, "1h"),
            }
        },
    )

    assert run.state is not None and run.state.type == StateType.COMPLETED, run.state
    report = report_markdown(served.api_url, run.id)
    assert report.startswith("## Rolling node maintenance: deadline"), report
    assert node_results(report) == {n: "not-started" for n in group.names}
    assert untouched(cluster, group.names)


def test_window_closing_mid_run_finishes_the_node_in_hand_and_leaves_the_rest(
    served: ServedStack, cluster, node_group
) -> None:
    group = node_group(2)
    now = datetime.now(UTC)
    if now.second > 30:  # keep at least 90 s of window: the run needs ~20 s to start
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    opened = now.replace(second=0, microsecond=0)
    closes = opened + timedelta(minutes=2)
    outlast = int((closes - now).total_seconds()) + 5  # the first node's work ends after close

    run = run_by_name(
        served.api_url,
        WEEKLY,
        {
            "params": {
                "nodes": group.names,
                "max_unavailable": "1",
                "dry_run": False,
                "action": {"kind": "command", "command": f"sleep {outlast}", "timeout": "5m"},
                "window": window_opening_at(opened, "2m"),
            }
        },
        timeout=400,
    )

    assert run.state is not None and run.state.type == StateType.COMPLETED, run.state
    report = report_markdown(served.api_url, run.id)
    assert report.startswith("## Rolling node maintenance: deadline"), report
    results = node_results(report)
    assert sorted(results.values()) == ["maintained", "not-started"], results
    assert untouched(cluster, group.names)  # the node in hand was finished and uncordoned
    assert datetime.now(UTC) > closes


def test_run_started_by_the_schedule_is_held_to_its_window(
    served: ServedStack, cluster, node_group
) -> None:
    """The scheduler (not a person) starts the run; the window it carries still holds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.schedules import CronSchedule

    group = node_group(2)
    closed = window_opening_at(datetime.now(UTC) - timedelta(hours=12), "1h")
    params = {"params": {"nodes": group.names, "dry_run": False, "window": closed}}
    with prefect_api(served.api_url), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(WEEKLY)
        [schedule] = client.create_deployment_schedules(
            deployment.id,
            [
                DeploymentScheduleCreate(
                    schedule=CronSchedule(cron="* * * * *", timezone="UTC"),
                    active=True,
                    parameters=params,
                    max_scheduled_runs=1,
                )
            ],
        )
        try:
            deadline = time.monotonic() + 240
            finished = None
            while finished is None:
                assert time.monotonic() < deadline, "no scheduled run finished in 240 s"
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
                )
                finished = next(
                    (
                        r
                        for r in runs
                        if r.auto_scheduled
                        and r.parameters.get("params", {}).get("nodes") == group.names
                        and r.state is not None
                        and r.state.is_final()
                    ),
                    None,
                )
                time.sleep(2)
        finally:
            client.delete_deployment_schedule(deployment.id, schedule.id)

    assert finished.state is not None and finished.state.type == StateType.COMPLETED
    report = report_markdown(served.api_url, finished.id)
    assert report.startswith("## Rolling node maintenance: deadline"), report
    assert node_results(report) == {n: "not-started" for n in group.names}
    assert untouched(cluster, group.names)
