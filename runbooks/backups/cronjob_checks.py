"""CronJob-based backups (a dump to object storage, an etcd snapshot job): recent success, and
no failed last run. Found by a label selector the operator gives."""

from __future__ import annotations

from runbooks.backups.facts import BackupFacts, CronJobs
from runbooks.backups.verdict import Verdict, age, backup_check
from runbooks.kit.durations import format_duration

REFERENCE = "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/"


def _cronjobs(facts: BackupFacts) -> CronJobs | Verdict:
    found = facts.cronjobs
    if found is None:
        return Verdict("skip", ["no --cronjob-selector given"])
    if found.error:
        return Verdict("error", [found.error])
    if not found.items:
        return Verdict(
            "fail",
            [f"no CronJob matches the selector {found.selector!r} in any namespace"],
            remediation="check the selector against the backup CronJobs' labels "
            "(`kubectl get cronjobs -A --show-labels`)",
        )
    return found


@backup_check(
    "cronjob.fresh",
    "Each backup CronJob last succeeded within the RPO",
    "blocker",
    remediation="look at the CronJob's recent Jobs and their pods' logs "
    "(`kubectl -n <ns> get jobs`, `kubectl -n <ns> logs job/<job>`); run one now with "
    "`kubectl -n <ns> create job --from=cronjob/<name> <name>-manual`",
    reference=REFERENCE,
)
def fresh(facts: BackupFacts) -> Verdict:
    found = _cronjobs(facts)
    if isinstance(found, Verdict):
        return found
    rpo, lines, failed = facts.policy.rpo, [], False
    for cj in found.items:
        suspended = " (suspended)" if cj.suspended else ""
        if cj.last_successful is None:
            failed = True
            lines.append(f"{cj.ref}: never succeeded{suspended}")
            continue
        stale = facts.now - cj.last_successful > rpo
        failed = failed or stale or cj.suspended
        over = f", older than the RPO {format_duration(rpo)}" if stale else ""
        lines.append(
            f"{cj.ref}: last succeeded {age(facts.now, cj.last_successful)}{over}{suspended}"
        )
    return Verdict("fail" if failed else "pass", lines)


@backup_check(
    "cronjob.last-job",
    "No backup CronJob's last Job failed",
    "blocker",
    remediation="read the failed Job's pod logs (`kubectl -n <ns> logs job/<job>`) and fix "
    "the cause; the next scheduled run may fail the same way",
    reference=REFERENCE,
)
def last_job(facts: BackupFacts) -> Verdict:
    found = _cronjobs(facts)
    if isinstance(found, Verdict):
        return found
    lines, failed = [], False
    for cj in found.items:
        job = cj.last_job
        if job is None:
            lines.append(f"{cj.ref}: no Job kept")
            continue
        state = "Failed" if job.failed else "Complete" if job.succeeded else "running"
        reason = f": {job.reason}" if job.failed and job.reason else ""
        failed = failed or job.failed
        lines.append(f"{cj.ref}: last Job {job.name} {state}{reason}")
    return Verdict("fail" if failed else "pass", lines)


CHECKS = [fresh, last_job]
