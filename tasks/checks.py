"""Running a runbook's checks: each a task, all at once, every outcome audited and shown.

Used by every runbook that verifies rather than changes (provision verification, backup checks,
an upgrade's preflight). A check that raises is reported as ``error`` (never hidden, never
stopping the others); the report is published as a Prefect table and markdown artifact, and its
problems go to the Slack channel when Slack is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.approvals.config import load_slack_settings
from runbooks.kit.checks import CheckReport, CheckResult, CheckSpec, errored
from tasks.audit import audit_context, record
from tasks.slack import post_message
from tasks.steps import StepRunner

logger = logging.getLogger(__name__)


@task(task_run_name="check {check_id}", cache_policy=NO_CACHE)
def evaluate(check_id: str, spec: CheckSpec, inputs: Mapping[str, Any]) -> CheckResult:
    """One check, as its own task run (the UI shows ``check nodes.ready`` failing)."""
    return spec.run(**inputs)


def run_checks(
    runner: StepRunner,
    runbook: str,
    specs: Sequence[CheckSpec],
    inputs: Mapping[str, Any],
    *,
    target: str,
) -> CheckReport:
    """Every check at once with the same ``inputs`` (what was read from the cluster, the
    baseline); each result is audited against ``target`` (the cluster)."""
    raw = runner.run_all(
        {s.id: (evaluate, {"check_id": s.id, "spec": s, "inputs": inputs}) for s in specs}
    )
    checks = [_as_result(spec, raw[spec.id]) for spec in specs]
    report = CheckReport(runbook=runbook, checks=checks)
    for check in checks:
        record(
            "check.result",
            target,
            target_kind="cluster",
            outcome=check.status,
            details={
                "check": check.id,
                "severity": check.severity,
                "evidence": check.evidence,
                "remediation": check.remediation if check.status != "pass" else "",
            },
        )
    runner.publish_table(f"{runbook}-checks", report.table(), f"{runbook}: every check")
    runner.publish_markdown(f"{runbook}-report", report.to_markdown(), report.summary_line())
    return report


def _as_result(spec: CheckSpec, value: Any) -> CheckResult:
    if isinstance(value, CheckResult):
        return value
    if isinstance(value, BaseException):
        return errored(spec, value)
    return errored(spec, TypeError(f"check returned {type(value).__name__}, not a result"))


def notify_problems(runner: StepRunner, report: CheckReport) -> bool:
    """The report's problems to the Slack channel, when Slack is configured; a courtesy that
    never fails the run. True when a message was posted."""
    if not report.problems:
        return False
    settings = load_slack_settings(use_prefect_blocks=runner.in_prefect)
    if settings.bot_token is None or settings.channel is None:
        logger.debug("Slack not configured: the %s summary is not posted", report.runbook)
        return False
    try:
        runner.call(post_message, report.slack_summary())
    except Exception as exc:
        runner.log.warning("could not post the %s summary to Slack: %s", report.runbook, exc)
        return False
    return True


def audited_checks(
    runner: StepRunner,
    runbook: str,
    specs: Sequence[CheckSpec],
    read: Callable[[], Mapping[str, Any]],
    *,
    target: str,
    details: Mapping[str, Any],
) -> CheckReport:
    """A verify-style runbook's whole run: ``run.start`` (with ``details``), ``read`` what the
    checks look at, every check at once, ``run.finish`` with the report's status (or 'error'
    naming what went wrong while reading, then re-raised), and the problems to Slack."""
    with audit_context(runbook, flow_run_id=runner.flow_run_id or runner.run_id):
        record("run.start", target, target_kind="cluster", details=dict(details))
        try:
            inputs = read()
        except Exception as exc:
            message = (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
            record(
                "run.finish",
                target,
                target_kind="cluster",
                outcome="error",
                details={"message": message},
            )
            raise
        report = run_checks(runner, runbook, specs, inputs, target=target)
        record(
            "run.finish",
            target,
            target_kind="cluster",
            outcome=report.status,
            details={"summary": report.summary_line(), "failed": [c.id for c in report.problems]},
        )
    notify_problems(runner, report)
    return report


def as_flow_result(report: CheckReport) -> Any:
    """The report as a flow's return: a failing report ends the flow run Failed (with the
    report as its data), so the Prefect UI shows it; otherwise the report itself."""
    if report.exit_code == 0:
        return report
    from prefect.states import Failed

    return Failed(message=report.summary_line(), data=report)
