"""Velero: storage locations usable, schedules running, and each schedule's latest backup good.

Each check looks at one question so a failure names exactly what is wrong: a stale backup fails
``velero.backup.fresh`` only, a failed one ``velero.backup.failed`` only. "The latest backup of a
schedule" is the newest Backup labelled ``velero.io/schedule-name=<schedule>``; the freshness,
error, snapshot and expiry checks read the newest *Completed* one (the one a restore would use).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from runbooks.backups.facts import (
    BACKUP_FAILED,
    BACKUP_UNFINISHED,
    Backup,
    BackupFacts,
    Schedule,
    Velero,
)
from runbooks.backups.next_backup import BadCron, next_backup
from runbooks.backups.verdict import Verdict, age, backup_check, when
from runbooks.kit.durations import format_duration

REFERENCE = "https://velero.io/docs/main/api-types/"
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _velero(facts: BackupFacts) -> Velero | Verdict:
    """The Velero facts, or the verdict when there is nothing to judge (skip or error)."""
    velero = facts.velero
    if velero is None:
        return Verdict("skip", ["Velero not checked"])
    if velero.error:
        return Verdict("error", [velero.error])
    if not velero.served:
        return Verdict(
            "skip", ["velero.io/v1 is not served by this cluster (Velero not installed)"]
        )
    return velero


def _per_schedule(
    facts: BackupFacts, judge: Callable[[Schedule, list[Backup]], tuple[bool, str] | None]
) -> Verdict:
    """Run ``judge`` on each schedule and its backups (newest first): (ok, line) or None."""
    velero = _velero(facts)
    if isinstance(velero, Verdict):
        return velero
    if not velero.schedules:
        return Verdict("skip", [f"no Schedules in namespace {velero.namespace}"])
    lines, failed = [], False
    for schedule in velero.schedules:
        backups = sorted(
            (b for b in velero.backups if b.schedule == schedule.name),
            key=_newest_first,
            reverse=True,
        )
        judged = judge(schedule, backups)
        if judged is None:
            continue
        ok, line = judged
        failed = failed or not ok
        lines.append(f"schedule {schedule.name}: {line}")
    return Verdict("fail" if failed else "pass", lines or ["no backups to judge"])


def _newest_first(b: Backup) -> tuple[dt.datetime, dt.datetime, str]:
    """When the backup started, then when its object was made, then its name (Velero's end in
    a timestamp). Not creation first: Backups synced from object storage (a new cluster, a
    restored one) are all created at the sync."""
    return (b.started or b.created or _EPOCH, b.created or _EPOCH, b.name)


def _newest_completed(backups: list[Backup]) -> Backup | None:
    return next((b for b in backups if b.phase == "Completed"), None)


@backup_check(
    "velero.locations",
    "Backup storage locations are Available and recently validated",
    "blocker",
    remediation="check the bucket, its credentials and the network from Velero "
    "(`velero backup-location get`, Velero's log); backups cannot be written or read",
    reference=REFERENCE,
)
def locations(facts: BackupFacts) -> Verdict:
    velero = _velero(facts)
    if isinstance(velero, Verdict):
        return velero
    if not velero.locations:
        return Verdict("fail", [f"no BackupStorageLocation in namespace {velero.namespace}"])
    lines, status = [], "pass"
    limit = facts.policy.bsl_validation_max_age
    for bsl in velero.locations:
        validated = f"validated {age(facts.now, bsl.last_validated)}" if bsl.last_validated else ""
        if bsl.phase != "Available":
            status = "fail"
            lines.append(f"{bsl.name}: {bsl.phase or 'no phase yet'} {bsl.message}".rstrip())
        elif bsl.last_validated is None or facts.now - bsl.last_validated > limit:
            status = "fail"
            lines.append(
                f"{bsl.name}: Available but {validated or 'never validated'} "
                f"(expected within {format_duration(limit)}): the phase may be stale"
            )
        elif bsl.access_mode != "ReadWrite":
            status = "warn" if status == "pass" else status
            lines.append(f"{bsl.name}: {bsl.access_mode}: new backups cannot be written to it")
        else:
            lines.append(f"{bsl.name}: Available, {validated}")
    return Verdict(status, lines)  # type: ignore[arg-type]


@backup_check(
    "velero.default-location",
    "Exactly one default backup storage location",
    "warn",
    remediation="mark one location default (`velero backup-location set <name> --default`); "
    "a backup that names no location goes to the default",
    reference=REFERENCE,
)
def default_location(facts: BackupFacts) -> Verdict:
    velero = _velero(facts)
    if isinstance(velero, Verdict):
        return velero
    defaults = [b.name for b in velero.locations if b.default]
    if len(defaults) == 1:
        return Verdict("pass", [f"default: {defaults[0]}"])
    if not defaults:
        known = ", ".join(b.name for b in velero.locations) or "none"
        return Verdict("fail", [f"no default location (locations: {known})"])
    return Verdict("fail", [f"{len(defaults)} default locations: {', '.join(defaults)}"])


@backup_check(
    "velero.schedules",
    "Schedules are Enabled and not paused",
    "blocker",
    remediation="fix the schedule (`kubectl -n <ns> describe schedule <name>` shows its "
    "validation errors) or unpause it (`velero schedule unpause <name>`)",
    reference=REFERENCE,
)
def schedules(facts: BackupFacts) -> Verdict:
    velero = _velero(facts)
    if isinstance(velero, Verdict):
        return velero
    if not velero.schedules:
        return Verdict(
            "warn",
            [f"no Schedules in namespace {velero.namespace}: nothing is backed up on its own"],
            remediation="create a Schedule (`velero schedule create`) if the cluster needs backups",
        )
    lines, failed = [], False
    for s in velero.schedules:
        problem = ""
        if s.phase == "FailedValidation":
            problem = "FailedValidation: " + ("; ".join(s.validation_errors) or "no reason given")
        elif s.phase != "Enabled":
            problem = f"phase {s.phase or 'not set'} (Velero has not accepted it)"
        elif s.paused:
            problem = "paused"
        else:
            try:
                next_backup(s.cron, facts.now, s.last_backup)
            except BadCron as exc:
                problem = str(exc)
        failed = failed or bool(problem)
        skipped = f", last skipped {age(facts.now, s.last_skipped)}" if s.last_skipped else ""
        lines.append(f"{s.name} ({s.cron}): {problem or 'Enabled'}{skipped}")
    return Verdict("fail" if failed else "pass", lines)


@backup_check(
    "velero.backup.fresh",
    "Each schedule's newest Completed backup is within the RPO",
    "blocker",
    remediation="find why recent backups did not complete (`velero backup get`, "
    "`velero backup logs <name>`); take one now (`velero backup create --from-schedule <s>`)",
    reference=REFERENCE,
)
def fresh(facts: BackupFacts) -> Verdict:
    rpo = facts.policy.rpo

    def judge(schedule: Schedule, backups: list[Backup]) -> tuple[bool, str]:
        newest = _newest_completed(backups)
        if newest is None:
            return False, f"no Completed backup ({len(backups)} backups in other phases)"
        done = newest.completed or newest.created
        if done is None:
            return False, f"{newest.name} Completed without a completion time"
        ok = facts.now - done <= rpo
        verdict = "" if ok else f", older than the RPO {format_duration(rpo)}"
        return ok, f"{newest.name} completed {age(facts.now, done)}{verdict}"

    return _per_schedule(facts, judge)


@backup_check(
    "velero.backup.failed",
    "No schedule's latest finished backup failed",
    "blocker",
    remediation="read the failure (`velero backup describe <name> --details`, "
    "`velero backup logs <name>`), fix it, and take a new backup",
    reference=REFERENCE,
)
def failed(facts: BackupFacts) -> Verdict:
    def judge(schedule: Schedule, backups: list[Backup]) -> tuple[bool, str] | None:
        finished = [b for b in backups if b.phase == "Completed" or b.phase in BACKUP_FAILED]
        if not finished:
            return None
        latest = finished[0]
        if latest.phase == "Completed":
            return True, f"{latest.name} Completed"
        why = latest.failure_reason or "; ".join(latest.validation_errors)
        counts = f" ({latest.errors} errors, {latest.warnings} warnings)"
        return False, f"{latest.name} {latest.phase}{counts}{': ' + why if why else ''}"

    return _per_schedule(facts, judge)


@backup_check(
    "velero.backup.stuck",
    "No backup stuck unfinished",
    "blocker",
    remediation="look at Velero's log and the backup (`velero backup describe <name>`); "
    "a restarted Velero marks backups it was making Failed",
    reference=REFERENCE,
)
def stuck(facts: BackupFacts) -> Verdict:
    velero = _velero(facts)
    if isinstance(velero, Verdict):
        return velero
    limit = facts.policy.stuck_after
    lines = []
    for b in velero.backups:
        since = b.started or b.created
        if b.phase in BACKUP_UNFINISHED and since is not None and facts.now - since > limit:
            lines.append(
                f"{b.name}: {b.phase} since {when(since)} ({age(facts.now, since)}, "
                f"longer than {format_duration(limit)})"
            )
    if lines:
        return Verdict("fail", lines)
    running = sum(1 for b in velero.backups if b.phase in BACKUP_UNFINISHED)
    return Verdict(
        "pass", [f"{running} backups in progress, none longer than {format_duration(limit)}"]
    )


@backup_check(
    "velero.backup.errors",
    "Each schedule's newest Completed backup has no errors and few warnings",
    "blocker",
    remediation="read the errors and warnings (`velero backup describe <name> --details`) "
    "and fix their cause; a backup with errors is missing items",
    reference=REFERENCE,
)
def errors(facts: BackupFacts) -> Verdict:
    most = facts.policy.max_warnings
    warned = False

    def judge(schedule: Schedule, backups: list[Backup]) -> tuple[bool, str] | None:
        nonlocal warned
        b = _newest_completed(backups)
        if b is None:
            return None
        problems = []
        if b.errors:
            problems.append(f"{b.errors} errors")
        if b.item_operations_failed:
            problems.append(f"{b.item_operations_failed} item operations failed")
        if b.failure_reason:
            problems.append(f"failure reason: {b.failure_reason}")
        if b.items_total is not None and (b.items_backed_up or 0) < b.items_total:
            problems.append(f"{b.items_backed_up or 0} of {b.items_total} items backed up")
        if problems:
            return False, f"{b.name}: {', '.join(problems)}"
        if b.warnings > most:
            warned = True
            return True, f"{b.name}: {b.warnings} warnings (more than {most})"
        return True, f"{b.name}: 0 errors, {b.warnings} warnings"

    verdict = _per_schedule(facts, judge)
    if verdict.status == "pass" and warned:
        verdict.status = "warn"
    return verdict


@backup_check(
    "velero.backup.snapshots",
    "Every volume snapshot of each newest Completed backup completed",
    "blocker",
    remediation="a volume without its snapshot cannot be restored: check the snapshot "
    "provider / CSI driver (`velero backup describe <name> --details`)",
    reference=REFERENCE,
)
def snapshots(facts: BackupFacts) -> Verdict:
    def judge(schedule: Schedule, backups: list[Backup]) -> tuple[bool, str] | None:
        b = _newest_completed(backups)
        if b is None:
            return None
        native = (b.snapshots_attempted, b.snapshots_completed)
        csi = (b.csi_snapshots_attempted, b.csi_snapshots_completed)
        ok = native[0] == native[1] and csi[0] == csi[1]
        return ok, (
            f"{b.name}: volume snapshots {native[1]}/{native[0]} completed, "
            f"CSI {csi[1]}/{csi[0]} completed"
        )

    return _per_schedule(facts, judge)


@backup_check(
    "velero.backup.expiry",
    "Each newest Completed backup outlives the schedule's next backup",
    "blocker",
    remediation="raise the schedule's TTL (spec.template.ttl) above its interval, or there "
    "is a window with no backup to restore",
    reference=REFERENCE,
)
def expiry(facts: BackupFacts) -> Verdict:
    def judge(schedule: Schedule, backups: list[Backup]) -> tuple[bool, str] | None:
        b = _newest_completed(backups)
        if b is None or b.expiration is None:
            return None
        try:
            due = next_backup(schedule.cron, facts.now, schedule.last_backup)
        except BadCron:
            return None  # velero.schedules names it
        ok = b.expiration > due
        relation = "after" if ok else "before"
        return ok, f"{b.name} expires {when(b.expiration)}, {relation} the next backup {when(due)}"

    return _per_schedule(facts, judge)


CHECKS = [locations, default_location, schedules, fresh, failed, stuck, errors, snapshots, expiry]
