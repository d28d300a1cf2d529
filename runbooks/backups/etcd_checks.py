"""etcd snapshots: the newest is recent, and etcdutl reads it as a sound snapshot that grew from
the previous one (revision not going back, size not collapsing, keys present)."""

from __future__ import annotations

from runbooks.backups.facts import BackupFacts, EtcdSnapshots
from runbooks.backups.verdict import Verdict, age, backup_check
from runbooks.kit.durations import format_duration

REFERENCE = "https://etcd.io/docs/v3.6/op-guide/recovery/"
# The newest snapshot smaller than this share of the previous one is suspect (a truncated file,
# a snapshot of the wrong member); deletions rarely shrink a cluster's data by half in a day.
SHRINK_LIMIT = 0.5


def _snapshots(facts: BackupFacts) -> EtcdSnapshots | Verdict:
    etcd = facts.etcd
    if etcd is None:
        return Verdict("skip", ["no --etcd-snapshots directory given"])
    if etcd.error:
        return Verdict("error", [etcd.error])
    if not etcd.files:
        return Verdict("fail", [f"no snapshot files in {etcd.directory}"])
    return etcd


@backup_check(
    "etcd.snapshot.fresh",
    "The newest etcd snapshot is within the RPO",
    "blocker",
    remediation="check the job that takes snapshots (`etcdctl snapshot save`) and that it "
    "writes into this directory; take one now",
    reference=REFERENCE,
)
def fresh(facts: BackupFacts) -> Verdict:
    etcd = _snapshots(facts)
    if isinstance(etcd, Verdict):
        return etcd
    newest, rpo = etcd.files[0], facts.policy.rpo
    stale = facts.now - newest.modified > rpo
    over = f", older than the RPO {format_duration(rpo)}" if stale else ""
    return Verdict(
        "fail" if stale else "pass",
        [f"{newest.path}: written {age(facts.now, newest.modified)}{over}"],
    )


@backup_check(
    "etcd.snapshot.integrity",
    "etcdutl reads the newest snapshot: keys present, revision and size plausible",
    "blocker",
    remediation="take a new snapshot and check it with `etcdutl snapshot status <file> -w "
    "table`; a snapshot etcdutl cannot read cannot be restored",
    reference=REFERENCE,
)
def integrity(facts: BackupFacts) -> Verdict:
    etcd = _snapshots(facts)
    if isinstance(etcd, Verdict):
        return etcd
    newest = etcd.files[0]
    if newest.status is None:
        return Verdict("fail", [f"{newest.path}: {newest.status_error or 'not inspected'}"])
    s = newest.status
    lines = [
        f"{newest.path}: hash {s.hash:08x}, revision {s.revision}, {s.total_keys} keys, "
        f"{s.total_size} bytes"
    ]
    status = "pass"
    if s.total_keys == 0:
        status = "fail"
        lines.append("no keys: an empty snapshot restores an empty cluster")
    previous = etcd.files[1] if len(etcd.files) > 1 else None
    if previous is not None and previous.status is not None:
        p = previous.status
        lines.append(f"previous {previous.path}: revision {p.revision}, {p.total_size} bytes")
        if s.revision < p.revision:
            status = "fail"
            lines.append(f"revision went back from {p.revision} to {s.revision}")
        elif s.total_size < p.total_size * SHRINK_LIMIT and status == "pass":
            status = "warn"
            lines.append(f"size shrank below {SHRINK_LIMIT:.0%} of the previous snapshot")
    return Verdict(status, lines)  # type: ignore[arg-type]


CHECKS = [fresh, integrity]
