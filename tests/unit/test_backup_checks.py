"""Each backup problem fails exactly the check that names it, and nothing else (pure decisions:
facts in, results out). The same scenarios run for real in tests/cluster/test_backup_check.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runbooks.backups.catalog import CHECKS
from runbooks.backups.facts import (
    Backup,
    BackupFacts,
    CronJob,
    CronJobRun,
    CronJobs,
    Drill,
    EtcdSnapshots,
    Policy,
    Schedule,
    SnapshotFile,
    SnapshotStatus,
    StorageLocation,
    Velero,
)

NOW = dt.datetime(2026, 12, 2, 13, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def backup(name: str, phase: str = "Completed", hours_ago: float = 3, **kw: Any) -> Backup:
    created = NOW - hours_ago * H
    fields: dict[str, Any] = {
        "name": name,
        "namespace": "velero",
        "labels": {"velero.io/schedule-name": "daily"},
        "created": created,
        "phase": phase,
        "started": created,
        "included_namespaces": ["shop"],
    }
    if phase in ("Completed", "PartiallyFailed", "Failed"):
        fields |= {"completed": created + 0.1 * H, "expiration": created + 720 * H}
    return Backup(**(fields | kw))


def healthy_velero(*backups: Backup) -> Velero:
    return Velero(
        namespace="velero",
        locations=[
            StorageLocation(
                name="default", phase="Available", default=True, last_validated=NOW - 0.01 * H
            )
        ],
        schedules=[Schedule(name="daily", cron="0 2 * * *", phase="Enabled")],
        backups=list(backups) or [backup("daily-20261202020000")],
    )


def status(keys: int = 211, revision: int = 287, size: int = 466944) -> SnapshotStatus:
    return SnapshotStatus(hash=0xEC18CD4E, revision=revision, total_keys=keys, total_size=size)


def snapshots(*files: SnapshotFile) -> EtcdSnapshots:
    default = SnapshotFile(path="/s/new.db", modified=NOW - H, size=466976, status=status())
    return EtcdSnapshots(directory="/s", files=list(files) or [default])


def cronjobs(*jobs: CronJobRun, last_ok_hours: float | None = 2) -> CronJobs:
    last = NOW - last_ok_hours * H if last_ok_hours is not None else None
    runs = list(jobs) or [CronJobRun(name="dump-1", created=NOW - 2 * H, succeeded=True)]
    item = CronJob(
        name="dump", namespace="db", schedule="0 * * * *", last_successful=last, jobs=runs
    )
    return CronJobs(selector="backup=true", items=[item])


def facts(**kw: Any) -> BackupFacts:
    base: dict[str, Any] = {
        "now": NOW,
        "policy": Policy(rpo=25 * H),
        "velero": healthy_velero(),
        "cronjobs": cronjobs(),
        "etcd": snapshots(),
    }
    return BackupFacts(**(base | kw))


def problems(f: BackupFacts) -> dict[str, str]:
    results = [spec.run(facts=f) for spec in CHECKS]
    return {r.id: r.status for r in results if r.status not in ("pass", "skip")}


GOOD = backup("daily-20261202020000", hours_ago=11)

CASES = [
    ("all healthy", {}, {}),
    (
        "a stale backup",
        {"velero": healthy_velero(backup("daily-old", hours_ago=49))},
        {"velero.backup.fresh": "fail"},
    ),
    (
        "the latest backup Failed after a good one",
        {"velero": healthy_velero(GOOD, backup("daily-new", "Failed", 1, failure_reason="boom"))},
        {"velero.backup.failed": "fail"},
    ),
    (
        "the latest backup PartiallyFailed",
        {"velero": healthy_velero(GOOD, backup("daily-new", "PartiallyFailed", 1, errors=3))},
        {"velero.backup.failed": "fail"},
    ),
    (
        "the latest backup FailedValidation",
        {
            "velero": healthy_velero(
                GOOD,
                backup("daily-new", "FailedValidation", 1, validation_errors=["no location"]),
            )
        },
        {"velero.backup.failed": "fail"},
    ),
    (
        "backups synced from storage at once are ordered by when they started",
        {
            "velero": healthy_velero(
                backup("daily-a-new", "Failed", 1, created=NOW - 0.5 * H),
                backup("daily-b-old", "Completed", 11, created=NOW - 0.5 * H),
            )
        },
        {"velero.backup.failed": "fail"},
    ),
    (
        "a backup InProgress for 5h",
        {"velero": healthy_velero(GOOD, backup("daily-stuck", "InProgress", 5))},
        {"velero.backup.stuck": "fail"},
    ),
    (
        "a backup InProgress for 10 minutes is not stuck",
        {"velero": healthy_velero(GOOD, backup("daily-running", "InProgress", 0.2))},
        {},
    ),
    (
        "a Completed backup with errors",
        {"velero": healthy_velero(backup("daily-x", errors=2))},
        {"velero.backup.errors": "fail"},
    ),
    (
        "a Completed backup with warnings over the threshold",
        {"velero": healthy_velero(backup("daily-x", warnings=4))},
        {"velero.backup.errors": "warn"},
    ),
    (
        "a volume snapshot not completed",
        {"velero": healthy_velero(backup("daily-x", snapshots_attempted=2, snapshots_completed=1))},
        {"velero.backup.snapshots": "fail"},
    ),
    (
        "a CSI snapshot not completed",
        {
            "velero": healthy_velero(
                backup("daily-x", csi_snapshots_attempted=3, csi_snapshots_completed=2)
            )
        },
        {"velero.backup.snapshots": "fail"},
    ),
    (
        "a backup expiring before the next one",
        {"velero": healthy_velero(backup("daily-x", expiration=NOW + 2 * H))},
        {"velero.backup.expiry": "fail"},
    ),
    (
        "a paused schedule",
        {
            "velero": healthy_velero().model_copy(
                update={
                    "schedules": [
                        Schedule(name="daily", cron="0 2 * * *", phase="Enabled", paused=True)
                    ]
                }
            )
        },
        {"velero.schedules": "fail"},
    ),
    (
        "a schedule that failed validation",
        {
            "velero": healthy_velero().model_copy(
                update={
                    "schedules": [
                        Schedule(
                            name="daily",
                            cron="0 2 * * *",
                            phase="FailedValidation",
                            validation_errors=["invalid schedule"],
                        )
                    ]
                }
            )
        },
        {"velero.schedules": "fail"},
    ),
    (
        "a storage location Unavailable",
        {
            "velero": healthy_velero().model_copy(
                update={
                    "locations": [
                        StorageLocation(
                            name="default",
                            phase="Unavailable",
                            default=True,
                            message="bucket not found",
                            last_validated=NOW,
                        )
                    ]
                }
            )
        },
        {"velero.locations": "fail"},
    ),
    (
        "a storage location not validated for an hour",
        {
            "velero": healthy_velero().model_copy(
                update={
                    "locations": [
                        StorageLocation(
                            name="default", phase="Available", default=True, last_validated=NOW - H
                        )
                    ]
                }
            )
        },
        {"velero.locations": "fail"},
    ),
    (
        "no default storage location",
        {
            "velero": healthy_velero().model_copy(
                update={
                    "locations": [StorageLocation(name="a", phase="Available", last_validated=NOW)]
                }
            )
        },
        {"velero.default-location": "fail"},
    ),
    (
        "a CronJob that never succeeded in the RPO",
        {"cronjobs": cronjobs(last_ok_hours=30)},
        {"cronjob.fresh": "fail"},
    ),
    (
        "a CronJob whose last Job failed",
        {
            "cronjobs": cronjobs(
                CronJobRun(name="dump-1", created=NOW - 2 * H, succeeded=True),
                CronJobRun(
                    name="dump-2", created=NOW - H, failed=True, reason="BackoffLimitExceeded"
                ),
            )
        },
        {"cronjob.last-job": "fail"},
    ),
    (
        "an etcd snapshot older than the RPO",
        {
            "etcd": snapshots(
                SnapshotFile(path="/s/a.db", modified=NOW - 26 * H, size=1, status=status())
            )
        },
        {"etcd.snapshot.fresh": "fail"},
    ),
    (
        "an etcd snapshot etcdutl cannot read",
        {
            "etcd": snapshots(
                SnapshotFile(path="/s/a.db", modified=NOW, size=1, status_error="invalid database")
            )
        },
        {"etcd.snapshot.integrity": "fail"},
    ),
    (
        "an etcd snapshot whose revision went back",
        {
            "etcd": snapshots(
                SnapshotFile(path="/s/b.db", modified=NOW, size=1, status=status(revision=100)),
                SnapshotFile(path="/s/a.db", modified=NOW - H, size=1, status=status(revision=287)),
            )
        },
        {"etcd.snapshot.integrity": "fail"},
    ),
    (
        "an etcd snapshot less than half the previous one",
        {
            "etcd": snapshots(
                SnapshotFile(path="/s/b.db", modified=NOW, size=1, status=status(size=1000)),
                SnapshotFile(path="/s/a.db", modified=NOW - H, size=1, status=status(size=9000)),
            )
        },
        {"etcd.snapshot.integrity": "warn"},
    ),
    (
        "a failed etcd restore drill",
        {
            "drill_requested": True,
            "etcd_drill": Drill(source="/s/new.db", ok=False, evidence=["sha256 mismatch"]),
        },
        {"restore.etcd": "fail"},
    ),
    (
        "a failed Velero restore drill",
        {
            "drill_requested": True,
            "velero_drill": Drill(source="daily-x", ok=False, evidence=["PartiallyFailed"]),
        },
        {"restore.velero": "fail"},
    ),
    (
        "Velero not installed skips its checks",
        {"velero": Velero(namespace="velero", served=False)},
        {},
    ),
    (
        "nothing to check at all fails: silence is not a backup",
        {"velero": Velero(namespace="velero", served=False), "cronjobs": None, "etcd": None},
        {"backups.sources": "fail"},
    ),
    (
        "Velero unreadable is an error, not a pass",
        {"velero": Velero(namespace="velero", error="cannot list Velero objects: HTTP 403")},
        {
            "velero.locations": "error",
            "velero.default-location": "error",
            "velero.schedules": "error",
            "velero.backup.fresh": "error",
            "velero.backup.failed": "error",
            "velero.backup.stuck": "error",
            "velero.backup.errors": "error",
            "velero.backup.snapshots": "error",
            "velero.backup.expiry": "error",
        },
    ),
]


@pytest.mark.parametrize(("case", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_problem_fails_only_its_check(case: str, changes: dict, expected: dict) -> None:
    assert problems(facts(**changes)) == expected


def test_a_stale_backup_names_the_backup_its_age_and_the_rpo() -> None:
    f = facts(velero=healthy_velero(backup("daily-old", hours_ago=49)))
    result = next(s for s in CHECKS if s.id == "velero.backup.fresh").run(facts=f)
    assert result.evidence == [
        "schedule daily: daily-old completed 48h54m ago, older than the RPO 25h"
    ]
    assert "velero backup create --from-schedule" in result.remediation


def test_a_failed_backup_names_its_phase_and_reason() -> None:
    f = facts(velero=healthy_velero(GOOD, backup("daily-new", "Failed", 1, failure_reason="boom")))
    result = next(s for s in CHECKS if s.id == "velero.backup.failed").run(facts=f)
    assert result.evidence == ["schedule daily: daily-new Failed (0 errors, 0 warnings): boom"]
    assert result.blocks


def test_drills_skip_unless_asked_for() -> None:
    results = {s.id: s.run(facts=facts()) for s in CHECKS}
    assert results["restore.etcd"].status == "skip"
    assert results["restore.etcd"].evidence == ["opt-in: run with --restore-drill"]


def test_a_passed_drill_reports_the_measured_restore_time() -> None:
    f = facts(
        drill_requested=True,
        etcd_drill=Drill(source="/s/new.db", ok=True, evidence=["211 keys"], seconds=1.234),
    )
    result = next(s for s in CHECKS if s.id == "restore.etcd").run(facts=f)
    assert (result.status, result.evidence) == (
        "pass",
        ["211 keys", "restore took 1.2s (measured RTO)"],
    )
