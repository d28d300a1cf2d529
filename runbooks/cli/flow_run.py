"""Running a runbook from the CLI: plain calls when no Prefect API is configured (the command
starts like kubectl, no temporary server), else a flow run the Prefect UI shows. Either way the
command gets the runbook's report, and an environment failure (a cluster that does not answer,
an unusable audit store) ends the command in one line with its exit code, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from runbooks.cli.errors import exit_code_for, one_line


def run_report(flow: Any, run_local: Callable[[Any], Any], params: Any) -> Any:
    """``run_local(params)`` without ``PREFECT_API_URL``, else ``flow(params)``; the report.
    A ValueError the run raised is bad input, re-raised for the command to report (exit 2)."""
    from runbooks.audit import AuditStoreError
    from tasks.kube.client import KubeUnreachable

    try:
        if not os.environ.get("PREFECT_API_URL"):
            return run_local(params)
        result = flow(params, return_state=True).result(raise_on_failure=False)
    except (KubeUnreachable, AuditStoreError) as exc:
        _fail(one_line(exc), exit_code_for(exc))
    if isinstance(result, ValueError):
        raise result
    if isinstance(result, KubeUnreachable | AuditStoreError):
        _fail(one_line(result), exit_code_for(result))
    if isinstance(result, BaseException):
        _fail(f"{type(result).__name__}: {one_line(result)}", 1)
    return result


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)
