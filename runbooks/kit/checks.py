"""The result of a check, and a report of many, rendered the same way everywhere.

Verify-style runbooks (provision verification, backup checks, upgrade preflight) answer
"is this cluster as it should be?" rather than change anything. Each check produces one
``CheckResult``; the CLI text table, ``--output json``, the Prefect table artifact, the Slack
summary and the audit records are all renderings of the same ``CheckReport``, so an operator
reads the same words wherever they look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["blocker", "warn", "info"]
CheckStatus = Literal["pass", "fail", "warn", "skip", "error"]
ReportStatus = Literal["pass", "warn", "fail"]

# Statuses that mean "this check found a problem (or could not tell)".
PROBLEMS: frozenset[str] = frozenset({"fail", "warn", "error"})


class CheckResult(BaseModel):
    """What one check found: enough to act on without reading the code."""

    id: str = Field(description="Stable identifier, e.g. api.readyz; used by --only/--skip")
    title: str
    severity: Severity
    status: CheckStatus
    evidence: list[str] = Field(default_factory=list, description="What was seen, one per line")
    remediation: str = Field("", description="What to do when the check does not pass")
    reference: str = Field("", description="Where the expectation comes from (doc or URL)")

    @property
    def blocks(self) -> bool:
        """A blocker that failed, or could not be evaluated, fails the run: unknown is not fine."""
        return self.severity == "blocker" and self.status in ("fail", "error")


class CheckReport(BaseModel):
    """All results of one run; ``status`` and ``exit_code`` follow from them."""

    runbook: str
    checks: list[CheckResult]

    @property
    def status(self) -> ReportStatus:
        if any(c.blocks for c in self.checks):
            return "fail"
        if any(c.status in PROBLEMS for c in self.checks):
            return "warn"
        return "pass"

    @property
    def exit_code(self) -> int:
        """0 when no blocker fails, 1 when one does (bad input exits 2 before a report exists)."""
        return 1 if self.status == "fail" else 0

    @property
    def problems(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status in PROBLEMS]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "checks": [c.model_dump() for c in self.checks]}

    def table(self) -> list[dict[str, str]]:
        """Rows for a Prefect table artifact (and the text table)."""
        return [
            {
                "check": c.id,
                "severity": c.severity,
                "status": c.status,
                "title": c.title,
                "evidence": "; ".join(c.evidence),
            }
            for c in self.checks
        ]

    def to_text(self) -> str:
        """A table of every check, then each problem's evidence and remediation."""
        rows = [(c.status.upper(), c.severity, c.id, c.title) for c in self.checks]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_HEADERS)]
        lines = [_row(_HEADERS, widths)] + [_row(r, widths) for r in rows]
        for c in self.problems:
            lines += ["", f"{c.status.upper()} {c.id}: {c.title}"]
            lines += [f"  evidence: {e}" for e in c.evidence]
            if c.remediation:
                lines.append(f"  remediation: {c.remediation}")
            if c.reference:
                lines.append(f"  reference: {c.reference}")
        lines += ["", self.summary_line()]
        return "\n".join(lines)

    def summary_line(self) -> str:
        counts: dict[str, int] = {}
        for c in self.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"{self.runbook}: {self.status} ({len(self.checks)} checks: {parts or 'none'})"

    def to_markdown(self) -> str:
        lines = [f"## {self.runbook}: {self.status}", ""]
        lines += ["| Status | Severity | Check | Evidence | Remediation |", "|---|---|---|---|---|"]
        for c in self.checks:
            evidence = "<br>".join(_cell(e) for e in c.evidence)
            lines.append(
                f"| {c.status} | {c.severity} | {c.id}: {_cell(c.title)} | {evidence} | "
                f"{_cell(c.remediation) if c.status in PROBLEMS else ''} |"
            )
        return "\n".join(lines)

    def slack_summary(self, limit: int = 10) -> str:
        """Slack mrkdwn: the verdict and the problems (capped, Slack truncates long messages)."""
        lines = [f"*{self.summary_line()}*"]
        for c in self.problems[:limit]:
            first = c.evidence[0] if c.evidence else ""
            lines.append(f"• `{c.status}` *{c.id}* ({c.severity}): {c.title}. {first}".rstrip())
        if len(self.problems) > limit:
            lines.append(f"… and {len(self.problems) - limit} more")
        return "\n".join(lines)


_HEADERS = ("STATUS", "SEVERITY", "CHECK", "TITLE")


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class CheckSpec:
    """A check a runbook can run: its identity, and the function that evaluates it."""

    id: str
    title: str
    severity: Severity
    run: Callable[..., CheckResult]
    reference: str = ""


class UnknownCheck(ValueError):
    """--only/--skip named a check that does not exist (bad input: exit 2)."""


def select_checks(
    specs: Sequence[CheckSpec], only: Iterable[str] = (), skip: Iterable[str] = ()
) -> list[CheckSpec]:
    """The checks to run, in their declared order; unknown ids are refused, naming the known."""
    only, skip = list(only), list(skip)
    known = [s.id for s in specs]
    unknown = [i for i in [*only, *skip] if i not in known]
    if unknown:
        raise UnknownCheck(f"unknown check id {', '.join(unknown)} (known: {', '.join(known)})")
    return [s for s in specs if (not only or s.id in only) and s.id not in skip]


def errored(spec: CheckSpec, exc: BaseException) -> CheckResult:
    """A check that raised: reported as ``error`` with the reason, never hidden."""
    return CheckResult(
        id=spec.id,
        title=spec.title,
        severity=spec.severity,
        status="error",
        evidence=[f"{type(exc).__name__}: {exc}".splitlines()[0]],
        remediation="the check could not be evaluated; fix the cause above and run it again",
        reference=spec.reference,
    )
