"""The check report: its verdict, exit code and renderings agree with the results."""

from __future__ import annotations

import json

import pytest

from runbooks.kit.checks import (
    CheckReport,
    CheckResult,
    CheckSpec,
    UnknownCheck,
    errored,
    select_checks,
)


def result(id: str, severity: str, status: str, **kw: object) -> CheckResult:
    return CheckResult.model_validate(
        {"id": id, "title": f"{id} title", "severity": severity, "status": status, **kw}
    )


@pytest.mark.parametrize(
    ("checks", "status", "code"),
    [
        ([], "pass", 0),
        ([("a", "blocker", "pass"), ("b", "info", "skip")], "pass", 0),
        ([("a", "blocker", "pass"), ("b", "warn", "fail")], "warn", 0),
        ([("a", "info", "error")], "warn", 0),
        ([("a", "blocker", "warn")], "warn", 0),
        ([("a", "blocker", "fail")], "fail", 1),
        ([("a", "blocker", "error")], "fail", 1),  # unknown is not fine for a blocker
    ],
)
def test_a_failing_blocker_and_only_that_fails_the_report(
    checks: list[tuple[str, str, str]], status: str, code: int
) -> None:
    report = CheckReport(runbook="verify", checks=[result(*c) for c in checks])
    assert (report.status, report.exit_code) == (status, code)


def test_every_rendering_names_the_failing_check_and_its_evidence() -> None:
    bad = result(
        "nodes.ready",
        "blocker",
        "fail",
        evidence=["worker-2: Ready=False (KubeletNotReady)"],
        remediation="look at the kubelet on worker-2",
    )
    report = CheckReport(runbook="verify", checks=[result("api.readyz", "blocker", "pass"), bad])
    text = report.to_text()
    assert "FAIL" in text and "worker-2: Ready=False" in text and "look at the kubelet" in text
    assert json.loads(json.dumps(report.to_json()))["status"] == "fail"
    assert report.to_json()["checks"][1]["evidence"] == bad.evidence
    assert "worker-2: Ready=False" in report.to_markdown()
    assert "nodes.ready" in report.slack_summary() and "api.readyz" not in report.slack_summary()
    assert {row["check"] for row in report.table()} == {"api.readyz", "nodes.ready"}


def _spec(id: str) -> CheckSpec:
    return CheckSpec(id=id, title=id, severity="blocker", run=lambda: result(id, "blocker", "pass"))


def test_only_and_skip_select_in_declared_order_and_refuse_unknown_ids() -> None:
    specs = [_spec("a"), _spec("b"), _spec("c")]
    assert [s.id for s in select_checks(specs, only=["c", "a"])] == ["a", "c"]
    assert [s.id for s in select_checks(specs, skip=["b"])] == ["a", "c"]
    with pytest.raises(UnknownCheck, match=r"unknown check id zz \(known: a, b, c\)"):
        select_checks(specs, skip=["zz"])


def test_a_check_that_raises_is_reported_as_error_not_hidden() -> None:
    res = errored(_spec("a"), RuntimeError("connection refused\nmore"))
    assert (res.status, res.evidence) == ("error", ["RuntimeError: connection refused"])
