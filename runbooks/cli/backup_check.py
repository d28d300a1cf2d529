"""``runbook backup-check``: are the backups there, fresh, complete, and restorable?

Exit 0 when no blocker fails, 1 when one does (the report names each failing check with its
evidence and remediation) or the cluster cannot be reached, 2 for bad input (a duration, a
namespace, a selector, a directory or etcdutl that is not usable) with one line; nothing is read
from the cluster before the input is known to be good. Only ``--restore-drill`` creates anything
(a Velero Restore into scratch namespaces; the etcd drill runs on this machine).
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

from runbooks.cli.errors import EXIT_BAD_INPUT, UserError, exit_code_for, one_line
from runbooks.cli.flow_run import run_report


def backup_check(
    rpo: Annotated[
        str, typer.Option(help="Newest good backup may be at most this old (e.g. 25h, 90m).")
    ] = "25h",
    velero_namespace: Annotated[
        str, typer.Option(help="Velero's namespace; '' to not check Velero.")
    ] = "velero",
    cronjob_selector: Annotated[
        str | None, typer.Option(help="Label selector of backup CronJobs (all namespaces).")
    ] = None,
    etcd_snapshots: Annotated[
        Path | None, typer.Option(help="Directory of etcd snapshot files.")
    ] = None,
    etcdutl: Annotated[
        Path | None, typer.Option(help="etcdutl binary (default: etcdutl on PATH).")
    ] = None,
    max_warnings: Annotated[
        int, typer.Option(help="A Completed backup with more warnings than this warns.")
    ] = 0,
    stuck_after: Annotated[
        str, typer.Option(help="A backup unfinished this long is stuck.")
    ] = "2h",
    restore_drill: Annotated[
        bool, typer.Option(help="Also restore the newest etcd snapshot and Velero backup.")
    ] = False,
    drill_timeout: Annotated[str, typer.Option(help="Longest a restore drill may take.")] = "5m",
    output: Annotated[str, typer.Option(help="text | json")] = "text",
    kubeconfig: Annotated[Path | None, typer.Option(help="Path to a kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig.")] = None,
) -> None:
    """Check Velero backups, backup CronJobs and etcd snapshots; optionally drill a restore."""
    try:
        params = _params(
            rpo=rpo,
            velero_namespace=velero_namespace,
            cronjob_selector=cronjob_selector,
            etcd_snapshots=etcd_snapshots,
            etcdutl=etcdutl,
            max_warnings=max_warnings,
            stuck_after=stuck_after,
            restore_drill=restore_drill,
            drill_timeout=drill_timeout,
            output=output,
            kubeconfig=kubeconfig,
            context=context,
        )
        report = _run(params)
    except ValueError as exc:  # bad input of every kind (durations, paths, kubeconfig, ...)
        print(f"error: {one_line(exc)}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        print("error: interrupted; a drill's scratch data was removed", file=sys.stderr)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.to_text())
    raise typer.Exit(report.exit_code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _validation_message(exc: Any) -> str:
    """pydantic's error, named by the flag that carried the value."""
    error = exc.errors()[0]
    field = str(error["loc"][-1]).replace("_", "-") if error["loc"] else ""
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"--{field}: {text}" if field else text


def _params(**flags: Any) -> Any:
    """The parameters from the flags; UserError (exit 2) naming the flag for any bad one."""
    from pydantic import ValidationError

    from runbooks.backups.params import BackupCheckParams
    from runbooks.kube_target import KubeTarget

    if flags["output"] not in ("text", "json"):
        raise UserError(f"--output must be text or json (got {flags['output']!r})")
    if flags["max_warnings"] < 0:
        raise UserError(f"--max-warnings must be 0 or more (got {flags['max_warnings']})")
    snapshots: Path | None = flags["etcd_snapshots"]
    if snapshots is not None and not snapshots.is_dir():
        raise UserError(f"--etcd-snapshots {snapshots} is not a directory")
    etcdutl: Path | None = flags["etcdutl"]
    if etcdutl is not None and not (etcdutl.is_file() and os.access(etcdutl, os.X_OK)):
        raise UserError(f"--etcdutl {etcdutl} is not an executable file")
    if snapshots is not None and etcdutl is None:
        from tasks.etcd import EtcdutlMissing, find_etcdutl

        try:
            find_etcdutl(None)
        except EtcdutlMissing as exc:
            raise UserError(str(exc)) from None
    try:
        return BackupCheckParams(
            target=KubeTarget(kubeconfig=flags["kubeconfig"], context=flags["context"]),
            policy={
                "rpo": flags["rpo"],
                "max_warnings": flags["max_warnings"],
                "stuck_after": flags["stuck_after"],
            },
            velero_namespace=flags["velero_namespace"] or None,
            cronjob_selector=flags["cronjob_selector"],
            etcd_snapshots=snapshots,
            etcdutl=etcdutl,
            restore_drill=flags["restore_drill"],
            drill_timeout=flags["drill_timeout"],
        )
    except ValidationError as exc:
        raise UserError(_validation_message(exc)) from None


def _run(params: Any) -> Any:
    from flows.backup_check import backup_check as backup_check_flow
    from runbooks.audit import AuditStoreError, get_store
    from tasks.kube.client import api_client

    try:
        get_store()
    except AuditStoreError as exc:
        _fail(one_line(exc), exit_code_for(exc))
    if params.velero_namespace or params.cronjob_selector:
        api_client(params.target)  # an unusable kubeconfig is bad input: before any read
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # SIGTERM (a service manager, a worker, Kubernetes) is Ctrl-C: a drill in hand stops its
    # throwaway etcd and removes its scratch data before the process exits.
    signal.signal(signal.SIGTERM, _interrupt)
    from flows.backup_check import run_local

    return run_report(backup_check_flow, run_local, params)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)
