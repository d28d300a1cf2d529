"""Reading every backup source a check was asked about, concurrently (backup-check, and the
upgrade preflight's backup check): Velero's objects, the backup CronJobs, etcd snapshot files."""

from __future__ import annotations

import datetime as dt

from runbooks.backups.facts import BackupFacts
from runbooks.backups.params import BackupCheckParams
from tasks.etcd import read_snapshots
from tasks.kube.backup_cronjobs import read_backup_cronjobs
from tasks.steps import Call, StepRunner
from tasks.velero import read_velero


def read_backups(runner: StepRunner, params: BackupCheckParams) -> BackupFacts:
    """Every source that was asked for, read concurrently; a source that failed carries its
    error into the facts (its checks say ``error``), the others are still judged."""
    reads: dict[str, Call] = {}
    if params.velero_namespace:
        reads["velero"] = (
            read_velero,
            {"target": params.target, "namespace": params.velero_namespace},
        )
    if params.cronjob_selector:
        reads["cronjobs"] = (
            read_backup_cronjobs,
            {"target": params.target, "selector": params.cronjob_selector},
        )
    if params.etcd_snapshots:
        reads["etcd"] = (
            read_snapshots,
            {"directory": params.etcd_snapshots, "etcdutl": params.etcdutl},
        )
    found = runner.run_all(reads)
    for value in found.values():
        if isinstance(value, BaseException):
            raise value  # our own bug: the readers carry the world's failures as facts
    return BackupFacts(
        now=dt.datetime.now(dt.UTC),
        policy=params.policy,
        drill_requested=params.restore_drill,
        **found,
    )
