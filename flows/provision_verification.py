"""Provision verification: is the cluster healthy, and what the team declared (the baseline)?

Read top-down, it is the procedure: load the baseline, read the cluster (one LIST per resource
type, concurrently), run every chosen check at once, record the run in the audit trail, post a
Slack summary when anything is wrong, and return the report (exit 0 unless a blocker fails).
Nothing in the cluster is changed: no check here creates objects (see the runbook's page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from runbooks.kit.checks import CheckReport, select_checks
from runbooks.kube_target import KubeTarget
from runbooks.verify.baseline import Baseline
from runbooks.verify.baseline_file import load_baseline
from runbooks.verify.checks import VerifyCheck, applicable, reads_for
from tasks.checks import as_flow_result, audited_checks
from tasks.kube.cluster_reads import read_cluster
from tasks.steps import LocalRunner, StepRunner, current_runner

FLOW_NAME = "provision-verification"


class NeedsBaseline(ValueError):
    """--only named a check that compares with a baseline, and none was given (exit 2)."""


class VerifyParams(BaseModel):
    """What to verify: the cluster, the baseline (a file, or inline), which checks."""

    target: KubeTarget = Field(default_factory=KubeTarget)
    baseline_file: Path | None = Field(
        None, description="A baseline YAML file on the worker; none: declaration-free checks"
    )
    baseline: Baseline | None = Field(None, description="The baseline inline (the UI form)")
    only: list[str] = Field(default_factory=list, description="Run only these check ids")
    skip: list[str] = Field(default_factory=list, description="Skip these check ids")


def load(params: VerifyParams) -> Baseline | None:
    """The baseline: inline, else from its file (``BaselineError``, bad input), else none."""
    if params.baseline is not None:
        return params.baseline
    return load_baseline(params.baseline_file) if params.baseline_file else None


def choose(params: VerifyParams, baseline: Baseline | None) -> list[VerifyCheck]:
    """The checks this run does; an unknown id, or a baseline check without one, is refused."""
    every = applicable(with_baseline=True)
    chosen = {s.id for s in select_checks([c.spec for c in every], params.only, params.skip)}
    if baseline is None:
        wanting = [c.spec.id for c in every if c.needs_baseline and c.spec.id in params.only]
        if wanting:
            raise NeedsBaseline(f"check {', '.join(wanting)} needs a baseline (--baseline FILE)")
        every = applicable(with_baseline=False)
    return [c for c in every if c.spec.id in chosen]


def verify(params: VerifyParams, runner: StepRunner) -> CheckReport:
    """The procedure, under Prefect or as plain calls."""
    baseline = load(params)
    checks = choose(params, baseline)
    certificates = baseline.certificates if baseline else None

    def read() -> dict[str, Any]:  # one LIST per resource type the chosen checks need
        snapshot = read_cluster(runner, params.target, reads_for(checks), certificates)
        return {"snapshot": snapshot, "baseline": baseline}

    return audited_checks(
        runner,
        FLOW_NAME,
        [c.spec for c in checks],
        read,
        target=params.target.describe(),
        details={
            "checks": [c.spec.id for c in checks],
            "baseline": str(params.baseline_file or ("inline" if baseline else "none")),
        },
    )


@flow(
    name=FLOW_NAME,
    description="Check a cluster's health and its declared baseline; changes nothing.",
    task_runner=ThreadPoolTaskRunner(max_workers=32),  # type: ignore[arg-type]
    validate_parameters=True,
)
def provision_verification(params: VerifyParams) -> CheckReport:
    """Verify the cluster; the report names each failing check with evidence and remediation."""
    return as_flow_result(verify(params, current_runner()))


def run_local(params: VerifyParams) -> CheckReport:
    """The same procedure without a Prefect API (the CLI's default)."""
    return verify(params, LocalRunner())
