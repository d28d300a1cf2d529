"""A backup check is a pure function of the facts returning a verdict; this makes it a CheckSpec.

The id, title, severity, reference and usual remediation are declared once, beside the function;
the function says only what it found (status, evidence, and a remediation when it knows better).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbooks.backups.facts import BackupFacts
from runbooks.kit.checks import CheckResult, CheckSpec, CheckStatus, Severity
from runbooks.kit.durations import format_duration


@dataclass
class Verdict:
    status: CheckStatus
    evidence: list[str] = field(default_factory=list)
    remediation: str = ""


def backup_check(
    id: str, title: str, severity: Severity, *, remediation: str, reference: str
) -> Callable[[Callable[[BackupFacts], Verdict]], CheckSpec]:
    """Declare a check: ``@backup_check(...)`` over ``def f(facts) -> Verdict`` gives a CheckSpec
    whose ``run(facts=...)`` returns the full CheckResult."""

    def declare(decide: Callable[[BackupFacts], Verdict]) -> CheckSpec:
        def run(facts: BackupFacts, **_: Any) -> CheckResult:
            verdict = decide(facts)
            problem = verdict.status in ("fail", "warn", "error")
            return CheckResult(
                id=id,
                title=title,
                severity=severity,
                status=verdict.status,
                evidence=verdict.evidence,
                remediation=(verdict.remediation or remediation) if problem else "",
                reference=reference,
            )

        return CheckSpec(id=id, title=title, severity=severity, run=run, reference=reference)

    return declare


def age(now: dt.datetime, then: dt.datetime) -> str:
    """``3h12m ago`` (or ``in 5m`` for a clock ahead of ours); whole minutes past an hour."""
    delta = now - then
    ahead = delta < dt.timedelta(0)
    delta = abs(delta)
    if delta >= dt.timedelta(hours=1):
        delta = dt.timedelta(minutes=round(delta.total_seconds() / 60))
    return f"in {format_duration(delta)}" if ahead else f"{format_duration(delta)} ago"


def when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
