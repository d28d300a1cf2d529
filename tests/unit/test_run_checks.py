"""Running checks: all run even when one raises, and each outcome is an audit record."""

from __future__ import annotations

from runbooks.audit import AuditStore, RecordFilter
from runbooks.kit.checks import CheckResult, CheckSpec
from tasks.audit import audit_context
from tasks.checks import run_checks
from tasks.steps import LocalRunner


def nodes_ready(nodes: dict[str, bool]) -> CheckResult:
    down = [n for n, ready in nodes.items() if not ready]
    return CheckResult(
        id="nodes.ready",
        title="Every node is Ready",
        severity="blocker",
        status="fail" if down else "pass",
        evidence=[f"{n}: not Ready" for n in down],
    )


def broken(nodes: dict[str, bool]) -> CheckResult:
    raise ConnectionError("API server went away")


SPECS = [
    CheckSpec("nodes.ready", "Every node is Ready", "blocker", nodes_ready),
    CheckSpec("api.readyz", "API server ready", "blocker", broken),
]


def test_a_check_that_raises_is_an_error_and_every_outcome_is_audited(
    audit_store: AuditStore,
) -> None:
    with audit_context("provision-verification", actor="oncall:alice"):
        report = run_checks(
            LocalRunner(),
            "provision-verification",
            SPECS,
            {"nodes": {"worker-1": True, "worker-2": False}},
            target="local",
        )
    assert [(c.id, c.status) for c in report.checks] == [
        ("nodes.ready", "fail"),
        ("api.readyz", "error"),
    ]
    assert report.exit_code == 1
    rows = audit_store.records(RecordFilter(action="check.result"))
    assert sorted((r.details["check"], r.outcome) for r in rows) == [
        ("api.readyz", "error"),
        ("nodes.ready", "fail"),
    ]
    assert {r.actor for r in rows} == {"oncall:alice"}
