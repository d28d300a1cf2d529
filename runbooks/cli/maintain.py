"""``runbook maintain``: roll maintenance across nodes (cordon, drain, act, Ready, uncordon).

Runs the rolling-node-maintenance procedure in this process: as a Prefect flow when a Prefect
API is configured (PREFECT_API_URL), otherwise directly, with no server to start. Exit 0 when
done (or a dry run), 1 when the runbook halted, 2 when the input was wrong (nothing changed).
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
from runbooks.identity import started_from_cli

app = typer.Typer()

ACTIONS = ("none", "command", "job", "manual")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]).replace("_", "-")
        text = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def maintain(
    nodes: Annotated[list[str] | None, typer.Argument(help="Nodes to maintain, by name.")] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Nodes by label selector.")
    ] = None,
    max_unavailable: Annotated[
        str, typer.Option(help="Most nodes out at once: N or P% of the selected nodes.")
    ] = "1",
    action: Annotated[str, typer.Option(help="none | command | job | manual")] = "none",
    command: Annotated[
        str | None,
        typer.Option(help="Command line for --action command/job; {node} = node name."),
    ] = None,
    reboots: Annotated[
        bool, typer.Option(help="The action reboots the node: wait for a new boot ID.")
    ] = False,
    action_timeout: Annotated[str, typer.Option(help="Limit for the action.")] = "30m",
    drain_timeout: Annotated[str, typer.Option(help="Limit per node drain.")] = "15m",
    ready_timeout: Annotated[str, typer.Option(help="Limit for Ready after the action.")] = "10m",
    grace_period: Annotated[
        int | None, typer.Option(help="Seconds per pod to stop (default: the pod's own).")
    ] = None,
    delete_emptydir_data: Annotated[
        bool, typer.Option(help="Evict pods with emptyDir volumes (data lost).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Evict pods without a controller.")] = False,
    ignore_daemonsets: Annotated[
        bool, typer.Option("--ignore-daemonsets/--no-ignore-daemonsets")
    ] = True,
    on_drain_failure: Annotated[
        str, typer.Option(help="uncordon | leave-cordoned: a node whose drain failed.")
    ] = "uncordon",
    skip_wait_for_delete_timeout: Annotated[
        int,
        typer.Option(
            min=0,
            help="Stop waiting for a pod this many seconds after its deletion was due (node "
            "not answering); 0: wait for all.",
        ),
    ] = 0,
    evict_without_room: Annotated[
        bool,
        typer.Option(
            help="Drain even when evicted pods would have no node to go to (they stay "
            "Pending); without it such a plan is refused."
        ),
    ] = False,
    prometheus_url: Annotated[
        str | None, typer.Option(help="Block while matching alerts fire.")
    ] = None,
    alertmanager_url: Annotated[
        str | None, typer.Option(help="Block while matching alerts are active.")
    ] = None,
    alert_filter: Annotated[
        str, typer.Option(help="Which alerts block: 'severity=critical,alertname=~Node.*'.")
    ] = "",
    block_on_pods: Annotated[
        str | None, typer.Option(help="Block while pods match this label selector.")
    ] = None,
    blocked_max_wait: Annotated[str, typer.Option(help="Halt if blocked this long.")] = "30m",
    deadline: Annotated[
        str | None, typer.Option(help="Start no new batch after this time (ISO 8601).")
    ] = None,
    lease_name: Annotated[
        str, typer.Option(help="Lease that makes maintenance one at a time (per cluster).")
    ] = "kube-runbooks-maintenance",
    lease_namespace: Annotated[
        str, typer.Option(help="Namespace of that Lease; it must exist.")
    ] = "kube-system",
    lease_duration: Annotated[
        str, typer.Option(help="A lease not renewed this long is taken over.")
    ] = "60s",
    wait_for_lease: Annotated[
        str,
        typer.Option(
            help="Wait up to this long for a Lease another run holds (until released or "
            "expired) instead of halting; 0s: do not wait."
        ),
    ] = "0s",
    dry_run: Annotated[bool, typer.Option(help="Show the plan; change nothing.")] = False,
    output: Annotated[str, typer.Option(help="text | json")] = "text",
    kubeconfig: Annotated[Path | None, typer.Option(help="Path to a kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig.")] = None,
) -> None:
    """Cordon, drain, maintain, wait Ready and uncordon nodes, max-unavailable at a time."""
    from runbooks.maintenance.params import (
        InvalidRequest,
        MaintenanceParams,
        check_namespace,
        check_object_name,
    )

    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json (got {output!r})", EXIT_BAD_INPUT)
    if action not in ACTIONS:
        raise _fail(
            f"--action must be one of {', '.join(ACTIONS)} (got {action!r})", EXIT_BAD_INPUT
        )
    for flag, value, check in (
        ("--lease-namespace", lease_namespace, check_namespace),
        ("--lease-name", lease_name, check_object_name),
    ):
        try:
            check(value)
        except ValueError as exc:  # named by its flag, not by its place in the model
            raise _fail(f"{flag} {exc}", EXIT_BAD_INPUT) from None
    request: dict[str, Any] = {
        "target": {"kubeconfig": kubeconfig, "context": context},
        "nodes": nodes or [],
        "selector": selector,
        "max_unavailable": max_unavailable,
        "drain_timeout": drain_timeout,
        "ready_timeout": ready_timeout,
        "grace_period": grace_period,
        "delete_emptydir_data": delete_emptydir_data,
        "force": force,
        "ignore_daemonsets": ignore_daemonsets,
        "on_drain_failure": on_drain_failure,
        "evict_without_room": evict_without_room,
        "skip_wait_for_delete_timeout": skip_wait_for_delete_timeout,
        "action": {
            "kind": action,
            "command": command,
            "reboots": reboots,
            "timeout": action_timeout,
        },
        "blockers": {
            "prometheus_url": prometheus_url,
            "alertmanager_url": alertmanager_url,
            "alert_filter": alert_filter,
            "pod_selector": block_on_pods,
            "max_wait": blocked_max_wait,
        },
        "deadline": deadline,
        "lease": {
            "name": lease_name,
            "namespace": lease_namespace,
            "duration": lease_duration,
            "wait": wait_for_lease,
        },
        "dry_run": dry_run,
    }
    try:
        params = MaintenanceParams.model_validate(request)
    except ValidationError as exc:
        raise _fail(_validation_message(exc), EXIT_BAD_INPUT) from None
    from flows.rolling_maintenance import operator_rules

    try:  # what the operator allows, before any Prefect run or cluster read (the flow re-checks)
        operator_rules(params)
    except InvalidRequest as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    from runbooks.audit import AuditStoreError, get_store

    try:  # an unusable audit URL is refused before the cluster is read, not at the first cordon
        get_store()
    except AuditStoreError as exc:
        raise _fail(one_line(exc), exit_code_for(exc)) from None
    from tasks.kube.client import KubeConfigError, KubeUnreachable, check_api

    try:  # before a Prefect run exists: its log would show these with a traceback
        check_api(params.target, contact=bool(os.environ.get("PREFECT_API_URL")))
    except (KubeConfigError, KubeUnreachable) as exc:
        raise _fail(str(exc), exit_code_for(exc)) from None

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    for noisy in ("httpx", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A service manager, a Prefect worker or Kubernetes stops a process with SIGTERM: treat it as
    # Ctrl-C, so the steps in flight stop and the lease is released instead of left to expire.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with started_from_cli():  # the person at this terminal is the run's requester
            report = _run(params)
    except InvalidRequest as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; the lease was released, nodes this run cordoned keep its annotation "
            "and a rerun finishes them (or `runbook release NODE...` gives them back)",
            EXIT_FAILED,
        ) from None
    if isinstance(report, KubeConfigError | InvalidRequest):
        raise _fail(str(report), EXIT_BAD_INPUT)
    if isinstance(report, KubeUnreachable | AuditStoreError):  # one line, exit 1 (or 2)
        raise _fail(one_line(report), exit_code_for(report))
    if isinstance(report, BaseException):
        raise _fail(f"{type(report).__name__}: {report}", EXIT_FAILED)
    if output == "json":
        typer.echo(json.dumps(report.summary_json(), indent=2))
    else:
        if report.plan and report.status in ("dry-run", "refused"):
            typer.echo(report.plan.to_markdown())
        typer.echo(report.to_text())
    raise typer.Exit(report.exit_code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(params: Any) -> Any:
    """The report, or the exception the flow ended with."""
    from flows.rolling_maintenance import rolling_node_maintenance, run_local
    from runbooks.audit import AuditStoreError
    from tasks.kube.client import KubeConfigError, KubeUnreachable

    if not os.environ.get("PREFECT_API_URL"):
        try:
            return run_local(params)
        except (KubeConfigError, KubeUnreachable, AuditStoreError) as exc:
            return exc
    state = rolling_node_maintenance(params, return_state=True)
    return state.result(raise_on_failure=False)


app.command()(maintain)
