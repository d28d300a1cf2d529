"""Backup check: are the backups there, fresh, complete, and (with a drill) restorable?

Read top-down, it is the procedure: read Velero's objects, the backup CronJobs and the etcd
snapshot files (at once); with ``restore_drill``, restore the newest etcd snapshot into a
throwaway etcd and the newest Completed Velero backup into scratch namespaces; judge everything
at once; record the run; post a Slack summary when a backup is stale or failed; return the
report (exit 0 unless a blocker fails). Only the drill creates anything (a Restore object).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from runbooks.backups.catalog import CHECKS
from runbooks.backups.facts import Backup, BackupFacts, Drill, Velero
from runbooks.backups.params import BackupCheckParams
from runbooks.kit.checks import CheckReport
from tasks.backup_reads import read_backups
from tasks.checks import as_flow_result, audited_checks
from tasks.etcd import EtcdutlMissing, etcd_restore_drill, find_etcdutl
from tasks.steps import Call, LocalRunner, StepRunner, current_runner
from tasks.velero import velero_restore_drill

FLOW_NAME = "backup-check"


def drill_restores(runner: StepRunner, params: BackupCheckParams, facts: BackupFacts) -> None:
    """Restore the newest etcd snapshot and the newest Completed Velero backup, at once."""
    timeout = params.drill_timeout.total_seconds()
    drills: dict[str, Call] = {}
    if facts.etcd is not None and facts.etcd.files:
        try:
            etcdutl = find_etcdutl(params.etcdutl)
        except EtcdutlMissing as exc:
            facts.etcd_drill = Drill(source=facts.etcd.files[0].path, ok=False, evidence=[str(exc)])
        else:
            drills["etcd_drill"] = (
                etcd_restore_drill,
                {"etcdutl": etcdutl, "snapshot": facts.etcd.files[0], "timeout": timeout},
            )
    newest = _newest_completed_backup(facts.velero)
    if newest is not None and params.velero_namespace:
        drills["velero_drill"] = (
            velero_restore_drill,
            {
                "target": params.target,
                "namespace": params.velero_namespace,
                "backup": newest,
                "timeout": timeout,
                "run_id": runner.run_id,
            },
        )
    for name, value in runner.run_all(drills).items():
        source = "etcd snapshot" if name == "etcd_drill" else "Velero backup"
        if isinstance(value, BaseException):  # a drill that could not run is a failed drill
            value = Drill(source=source, ok=False, evidence=[f"{type(value).__name__}: {value}"])
        setattr(facts, name, value)


def _newest_completed_backup(velero: Velero | None) -> Backup | None:
    if velero is None or not velero.served or velero.error:
        return None
    done = [b for b in velero.backups if b.phase == "Completed" and b.completed is not None]
    return max(done, key=lambda b: b.completed or _EPOCH) if done else None


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def check_backups(params: BackupCheckParams, runner: StepRunner) -> CheckReport:
    """The procedure, under Prefect or as plain calls."""

    def read() -> dict[str, Any]:
        facts = read_backups(runner, params)
        if params.restore_drill:
            drill_restores(runner, params, facts)
        return {"facts": facts}

    # a stale or failed backup is news for the channel: audited_checks posts the problems
    return audited_checks(
        runner,
        FLOW_NAME,
        CHECKS,
        read,
        target=params.target.describe(),
        details=params.model_dump(mode="json", exclude={"target"}),
    )


@flow(
    name=FLOW_NAME,
    description="Check that backups (Velero, CronJobs, etcd snapshots) are fresh and complete; "
    "optionally drill a restore.",
    task_runner=ThreadPoolTaskRunner(max_workers=8),  # type: ignore[arg-type]
    validate_parameters=True,
)
def backup_check(params: BackupCheckParams) -> CheckReport:
    """Check the backups; the report names each failing check with evidence and remediation."""
    return as_flow_result(check_backups(params, current_runner()))


def run_local(params: BackupCheckParams) -> CheckReport:
    """The same procedure without a Prefect API (the CLI's default)."""
    return check_backups(params, LocalRunner())
