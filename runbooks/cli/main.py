"""The ``runbook`` command. Each concern registers its own sub-command module here."""

from __future__ import annotations

import typer

from runbooks.cli import cluster

app = typer.Typer(
    name="runbook",
    help="Kubernetes cluster operations runbooks, run as Prefect flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")


if __name__ == "__main__":  # pragma: no cover
    app()
