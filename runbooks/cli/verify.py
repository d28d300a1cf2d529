"""``runbook verify``: check a cluster's health and, with ``--baseline``, what was declared.

Exit 0 when no blocker fails, 1 when one does (the report names each failing check with its
evidence and remediation) or the cluster cannot be reached, 2 for bad input (an unreadable or
invalid baseline, an unknown check id, an unusable kubeconfig) with one line; nothing is read
from the cluster before the input is known to be good. Changes nothing in the cluster.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from runbooks.cli.errors import EXIT_BAD_INPUT, UserError, exit_code_for, one_line
from runbooks.cli.flow_run import run_report


def _ids(flag: str, value: str | None) -> list[str]:
    if value is None:
        return []
    ids = [part.strip() for part in value.split(",")]
    if not all(ids):
        raise UserError(f"{flag} takes check ids separated by commas (got {value!r})")
    return ids


def verify(
    baseline: Annotated[
        Path | None,
        typer.Option(help="Baseline YAML; without it only the declaration-free checks run."),
    ] = None,
    only: Annotated[str | None, typer.Option(help="Run only these check ids: a,b,...")] = None,
    skip: Annotated[str | None, typer.Option(help="Skip these check ids: a,b,...")] = None,
    output: Annotated[str, typer.Option(help="text | json")] = "text",
    kubeconfig: Annotated[Path | None, typer.Option(help="Path to a kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig.")] = None,
) -> None:
    """Verify a cluster against its baseline: API health, nodes, skew, APIs, webhooks, ..."""
    try:
        report = _verify(baseline, only, skip, output, kubeconfig, context)
    except ValueError as exc:  # bad input of every kind (baseline, ids, kubeconfig, ...)
        print(f"error: {one_line(exc)}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        print("error: interrupted; nothing was changed", file=sys.stderr)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.to_text())
    raise typer.Exit(report.exit_code)


def _verify(
    baseline: Path | None,
    only: str | None,
    skip: str | None,
    output: str,
    kubeconfig: Path | None,
    context: str | None,
) -> Any:
    if output not in ("text", "json"):
        raise UserError(f"--output must be text or json (got {output!r})")
    from flows.provision_verification import VerifyParams, choose, load, provision_verification
    from runbooks.audit import AuditStoreError, get_store
    from runbooks.kube_target import KubeTarget

    params = VerifyParams(
        target=KubeTarget(kubeconfig=kubeconfig, context=context),
        baseline_file=baseline,
        only=_ids("--only", only),
        skip=_ids("--skip", skip),
    )
    # Every input before the cluster is read: the baseline, the check ids, the audit store.
    params.baseline = load(params)
    choose(params, params.baseline)
    from tasks.kube.client import api_client

    api_client(params.target)  # an unusable kubeconfig or context: KubeConfigError, exit 2
    try:
        get_store()
    except AuditStoreError as exc:
        _fail(one_line(exc), exit_code_for(exc))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    from flows.provision_verification import run_local

    return run_report(provision_verification, run_local, params)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)
