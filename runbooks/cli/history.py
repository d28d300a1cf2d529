"""``runbook history``: runs newest first, from Prefect's API joined with the audit store."""

from __future__ import annotations

from typing import Annotated

import typer

from runbooks.audit import AuditStoreError, get_store
from runbooks.audit.runs import RunHistory, run_history
from runbooks.cli.audit import parse_output, render_table
from runbooks.cli.errors import UserError, reported_errors


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def history_table(history: RunHistory) -> str:
    rows = [
        [
            e.flow_run_id[:8],
            e.runbook,
            e.status,
            e.started_by,
            (e.start or "-")[:19].replace("T", " "),
            (e.end or "-")[:19].replace("T", " "),
            _duration(e.duration_seconds),
            f"{e.audit_records}" + (f" ({e.audit_failures} failed)" if e.audit_failures else ""),
        ]
        for e in history.runs
    ]
    headers = ["RUN", "RUNBOOK", "STATUS", "STARTED BY", "START (UTC)", "END (UTC)", "DURATION"]
    return render_table(rows, [*headers, "AUDIT RECORDS"])


def history(
    limit: Annotated[int, typer.Option("--limit", help="How many runs (1-200).")] = 20,
    runbook: Annotated[str | None, typer.Option("--runbook", help="Only this runbook.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Runs, newest first: runbook, status, started by, start/end, duration, audit records."""
    with reported_errors(AuditStoreError):
        output = parse_output(output)
        if not 1 <= limit <= 200:
            raise UserError(f"--limit {limit}: give a number of runs from 1 to 200")
        result = run_history(get_store(), limit=limit, runbook=runbook)
    if result.prefect_note:
        typer.echo(f"note: {result.prefect_note}", err=True)
    if output == "json":
        typer.echo(result.model_dump_json(indent=2))
        return
    if not result.runs:
        typer.echo("no runs found", err=True)
        return
    typer.echo(history_table(result))


def register(app: typer.Typer) -> None:
    """Add ``runbook audit ...`` and ``runbook history`` to the main command."""
    from runbooks.cli import audit

    app.add_typer(audit.app, name="audit")
    app.command(name="history")(history)
