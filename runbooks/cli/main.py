"""The ``runbook`` command. Each concern registers its own sub-command module here."""

from __future__ import annotations

import typer

from runbooks.cli import cluster, listen
from runbooks.cli.history import register as register_audit_commands

app = typer.Typer(
    name="runbook",
    help="Kubernetes cluster operations runbooks, run as Prefect flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")
register_audit_commands(app)  # runbook audit ..., runbook history
app.command(name="listen")(listen.listen)


if __name__ == "__main__":  # pragma: no cover
    app()
