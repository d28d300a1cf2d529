"""Restore drills (opt-in): a backup never restored is a hypothesis. The tasks do the restore
and measure it; these checks judge the outcome and report the measured restore time (RTO)."""

from __future__ import annotations

from runbooks.backups.facts import BackupFacts, Drill
from runbooks.backups.verdict import Verdict, backup_check


def _judge(facts: BackupFacts, drill: Drill | None, absent: str) -> Verdict:
    if not facts.drill_requested:
        return Verdict("skip", ["opt-in: run with --restore-drill"])
    if drill is None:
        return Verdict("skip", [absent])
    rto = [f"restore took {drill.seconds:.1f}s (measured RTO)"] if drill.seconds is not None else []
    return Verdict("pass" if drill.ok else "fail", [*drill.evidence, *rto])


@backup_check(
    "restore.etcd",
    "The newest etcd snapshot restores and serves its keys",
    "blocker",
    remediation="the snapshot cannot be restored: take a new one, check it with `etcdutl "
    "snapshot status`, and find what damaged the file (storage, transfer, a partial write)",
    reference="https://etcd.io/docs/v3.6/op-guide/recovery/",
)
def etcd_restore(facts: BackupFacts) -> Verdict:
    return _judge(facts, facts.etcd_drill, "no etcd snapshot to restore (--etcd-snapshots)")


@backup_check(
    "restore.velero",
    "The newest Completed Velero backup restores into a scratch namespace",
    "blocker",
    remediation="read the restore's errors (`velero restore describe <name> --details`, "
    "`velero restore logs <name>`); a backup that does not restore is not a backup",
    reference="https://velero.io/docs/main/restore-reference/",
)
def velero_restore(facts: BackupFacts) -> Verdict:
    return _judge(facts, facts.velero_drill, "no Completed Velero backup to restore")


CHECKS = [etcd_restore, velero_restore]
