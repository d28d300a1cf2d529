"""A verify-style run is audited from start to finish, also when reading the cluster fails."""

from __future__ import annotations

import pytest

from runbooks.audit import AuditStore, RecordFilter
from runbooks.kit.checks import CheckResult, CheckSpec
from tasks.checks import as_flow_result, audited_checks
from tasks.steps import LocalRunner


def snapshot_fresh(age_hours: int) -> CheckResult:
    status = "fail" if age_hours > 24 else "pass"
    return CheckResult(
        id="etcd.fresh", title="etcd snapshot fresh", severity="blocker", status=status
    )


SPECS = [CheckSpec("etcd.fresh", "etcd snapshot fresh", "blocker", snapshot_fresh)]


def _trail(store: AuditStore) -> list[tuple[str, str | None]]:
    return [(r.action, r.outcome) for r in store.records(RecordFilter(runbook="backup-check"))]


def test_a_run_is_start_each_check_and_finish_with_the_reports_status(audit_store: AuditStore):
    report = audited_checks(
        LocalRunner(),
        "backup-check",
        SPECS,
        lambda: {"age_hours": 30},
        target="local",
        details={"rpo": "24h"},
    )
    assert report.status == "fail"
    assert [a for a, _ in _trail(audit_store)] == ["run.start", "check.result", "run.finish"]
    assert _trail(audit_store)[-1] == ("run.finish", "fail")
    assert as_flow_result(report).is_failed()  # the Prefect UI shows the run Failed


def test_a_read_that_fails_finishes_the_run_as_error_naming_the_first_line(audit_store: AuditStore):
    def unreadable() -> dict[str, int]:
        raise PermissionError("snapshots dir /var/backups: permission denied\n(errno 13)")

    with pytest.raises(PermissionError):
        audited_checks(LocalRunner(), "backup-check", SPECS, unreadable, target="local", details={})
    finish = audit_store.records(RecordFilter(runbook="backup-check", action="run.finish"))
    assert [(r.outcome, r.details["message"]) for r in finish] == [
        ("error", "snapshots dir /var/backups: permission denied")
    ]
