"""What a maintenance run shows in the Prefect UI: the plan it follows and its report."""

from __future__ import annotations

from runbooks.maintenance.plan import MaintenancePlan
from runbooks.maintenance.report import MaintenanceReport
from tasks.steps import StepRunner

PREFIX = "rolling-node-maintenance"


def publish_plan(runner: StepRunner, plan: MaintenancePlan) -> None:
    runner.publish_markdown(f"{PREFIX}-plan", plan.to_markdown(), "The plan this run follows")


def publish_report(runner: StepRunner, report: MaintenanceReport) -> None:
    runner.publish_table(
        f"{PREFIX}-nodes", report.table(), "Per node: result, pods evicted, durations per step"
    )
    runner.publish_markdown(
        f"{PREFIX}-report", report.to_markdown(), f"Rolling node maintenance: {report.status}"
    )
