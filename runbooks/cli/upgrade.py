"""``runbook upgrade --to VERSION``: preflight, approval, control plane, then nodes, verified.

Runs the cluster-upgrade procedure in this process: as a Prefect flow when a Prefect API is
configured (PREFECT_API_URL), otherwise directly. Exit 0 upgraded (or a dry run), 1 refused by
preflight or halted, 2 bad input (nothing changed).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from runbooks.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, exit_code_for, one_line
from runbooks.cli.maintain import _validation_message
from runbooks.identity import started_from_cli


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def upgrade(
    to: Annotated[str, typer.Option("--to", help="Target version, e.g. v1.36.3.")],
    provider: Annotated[str, typer.Option(help="local | command")] = "local",
    control_plane_command: Annotated[
        str | None,
        typer.Option(help="argv per control-plane node; {node} {version}; never a shell."),
    ] = None,
    node_command: Annotated[
        str | None, typer.Option(help="argv per drained node; {node} {version}.")
    ] = None,
    snapshot_command: Annotated[
        str | None, typer.Option(help="argv taking an etcd snapshot first; {version}.")
    ] = None,
    local_cluster: Annotated[
        str | None, typer.Option(help="Local cluster name (default: from the kubeconfig path).")
    ] = None,
    strategy: Annotated[str, typer.Option(help="in-place | replace")] = "in-place",
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Only nodes matching this selector.")
    ] = None,
    max_unavailable: Annotated[str, typer.Option(help="Most nodes out at once: N or P%.")] = "1",
    approval: Annotated[str, typer.Option(help="slack | none")] = "slack",
    skip_check: Annotated[
        str | None, typer.Option(help="Preflight check IDs to accept failing: ID,ID.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Preflight and plan; change nothing.")] = False,
    output: Annotated[str, typer.Option(help="text | json")] = "text",
    kubeconfig: Annotated[Path | None, typer.Option(help="Path to a kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig.")] = None,
) -> None:
    """Upgrade the cluster: preflight, approval, etcd snapshot, control plane, nodes, verify."""
    from runbooks.maintenance.params import InvalidRequest
    from runbooks.upgrade.params import UpgradeParams

    request: dict[str, Any] = {
        "to": to,
        "provider": provider,
        "control_plane_command": control_plane_command,
        "node_command": node_command,
        "snapshot_command": snapshot_command,
        "local_cluster": local_cluster,
        "strategy": strategy,
        "selector": selector,
        "max_unavailable": max_unavailable,
        "approval": approval,
        "skip_check": skip_check or [],
        "dry_run": dry_run,
        "output": output,
        "target": {"kubeconfig": kubeconfig, "context": context},
    }
    try:
        params = UpgradeParams.model_validate(request)
    except ValidationError as exc:
        raise _fail(_validation_message(exc), EXIT_BAD_INPUT) from None
    from flows.cluster_upgrade import choose_provider, upgrade_rules
    from runbooks.upgrade.preflight import check_skip_ids

    try:
        check_skip_ids(params.skip_check)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None

    try:  # before any read: who approves, or whether nobody may; which local cluster
        with started_from_cli():
            upgrade_rules(params.model_copy(update={"dry_run": True}))
        choose_provider(params)
    except InvalidRequest as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    from runbooks.audit import AuditStoreError, get_store

    try:
        get_store()
    except AuditStoreError as exc:
        raise _fail(one_line(exc), exit_code_for(exc)) from None
    from tasks.kube.client import KubeConfigError, KubeUnreachable, check_api

    try:
        check_api(params.target, contact=bool(os.environ.get("PREFECT_API_URL")))
    except (KubeConfigError, KubeUnreachable) as exc:
        raise _fail(str(exc), exit_code_for(exc)) from None

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    for noisy in ("httpx", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with started_from_cli():
            report = _run(params)
    except InvalidRequest as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; the lease was released, nodes this run cordoned keep its annotation "
            "and a rerun continues from where the cluster stands",
            EXIT_FAILED,
        ) from None
    if isinstance(report, KubeConfigError | InvalidRequest):
        raise _fail(str(report), EXIT_BAD_INPUT)
    if isinstance(report, KubeUnreachable | AuditStoreError):
        raise _fail(one_line(report), exit_code_for(report))
    if isinstance(report, BaseException):
        raise _fail(f"{type(report).__name__}: {report}", EXIT_FAILED)
    if output == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.to_text())
    raise typer.Exit(report.exit_code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(params: Any) -> Any:
    """The report, or the exception the flow ended with."""
    from flows.cluster_upgrade import cluster_upgrade, run_local
    from runbooks.audit import AuditStoreError
    from tasks.kube.client import KubeConfigError, KubeUnreachable

    if not os.environ.get("PREFECT_API_URL"):
        try:
            return run_local(params)
        except (KubeConfigError, KubeUnreachable, AuditStoreError) as exc:
            return exc
    state = cluster_upgrade(params, return_state=True)
    return state.result(raise_on_failure=False)
