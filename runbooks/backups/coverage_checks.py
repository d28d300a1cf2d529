"""Was anything checked at all? A cluster without Velero, with no CronJob selector and no snapshot
directory given, would otherwise "pass" with every check skipped: silence is not a backup."""

from __future__ import annotations

from runbooks.backups.facts import BackupFacts
from runbooks.backups.verdict import Verdict, backup_check


@backup_check(
    "backups.sources",
    "At least one backup source was found and checked",
    "blocker",
    remediation="point the check at this cluster's backups: install Velero (or name its "
    "namespace with --velero-namespace), --cronjob-selector for backup CronJobs, "
    "--etcd-snapshots for etcd snapshot files",
    reference="docs/runbooks/backup-check.md",
)
def sources(facts: BackupFacts) -> Verdict:
    found = []
    velero = facts.velero
    if velero is not None and velero.served:
        found.append(f"Velero in namespace {velero.namespace}")
    if facts.cronjobs is not None:
        found.append(f"CronJobs {facts.cronjobs.selector!r}")
    if facts.etcd is not None:
        found.append(f"etcd snapshots in {facts.etcd.directory}")
    if found:
        return Verdict("pass", [f"checked: {', '.join(found)}"])
    why = "velero.io/v1 is not served (Velero not installed)" if velero else "Velero not asked for"
    return Verdict("fail", [f"nothing to check: {why}, no CronJob selector, no snapshot directory"])


CHECKS = [sources]
