"""``runbook release``: give back nodes the engine left cordoned, instead of `kubectl uncordon`.

Lifts only cordons this engine made (any run) and clears their marks; a node cordoned by someone
else is left as it is and named. Exit 0 when done (or a dry run), 1 when the cluster could not be
worked on (a maintenance run holds its Lease, the API did not answer), 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from runbooks.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def release(
    nodes: Annotated[list[str] | None, typer.Argument(help="Nodes to give back, by name.")] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Nodes by label selector.")
    ] = None,
    all_marked: Annotated[
        bool, typer.Option("--all", help="Every node carrying the engine's cordon mark.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would be done; change nothing.")] = False,
    output: Annotated[str, typer.Option(help="text | json")] = "text",
    lease_name: Annotated[
        str, typer.Option(help="The maintenance Lease, held while releasing.")
    ] = "kube-runbooks-maintenance",
    lease_namespace: Annotated[str, typer.Option(help="Namespace of that Lease.")] = "kube-system",
    kubeconfig: Annotated[Path | None, typer.Option(help="Path to a kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig.")] = None,
) -> None:
    """Uncordon nodes this engine cordoned (and clear its marks); leave others' cordons."""
    from runbooks.maintenance.params import check_namespace, check_object_name
    from runbooks.maintenance.release import ReleaseParams

    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json (got {output!r})", EXIT_BAD_INPUT)
    for flag, value, check in (
        ("--lease-namespace", lease_namespace, check_namespace),
        ("--lease-name", lease_name, check_object_name),
    ):
        try:
            check(value)
        except ValueError as exc:
            raise _fail(f"{flag} {exc}", EXIT_BAD_INPUT) from None
    try:
        params = ReleaseParams.model_validate(
            {
                "target": {"kubeconfig": kubeconfig, "context": context},
                "nodes": nodes or [],
                "selector": selector,
                "all_marked": all_marked,
                "lease": {"name": lease_name, "namespace": lease_namespace},
                "dry_run": dry_run,
            }
        )
    except ValidationError as exc:
        text = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise _fail(text, EXIT_BAD_INPUT) from None

    from flows.release_cordons import release_cordons
    from runbooks.maintenance.params import InvalidRequest
    from tasks.kube.client import KubeConfigError, KubeUnreachable
    from tasks.kube.lease import LeaseHeld
    from tasks.kube.nodes import NodeSelectionError

    try:
        report = release_cordons(params)
    except (NodeSelectionError, KubeConfigError, InvalidRequest) as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    except (LeaseHeld, KubeUnreachable) as exc:
        raise _fail(f"{exc}; nothing was released", EXIT_FAILED) from None
    if output == "json":
        typer.echo(json.dumps(report.summary_json(), indent=2))
    else:
        typer.echo(report.to_text())
