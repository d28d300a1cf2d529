"""The ``runbook`` command. Each concern registers its own sub-command module here."""

from __future__ import annotations

import typer

from runbooks.cli import cluster, listen, serve
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
app.command(name="serve")(serve.serve)
app.command(name="maintain")(__import__("runbooks.cli.maintain", fromlist=["_"]).maintain)


if __name__ == "__main__":  # pragma: no cover
    app()
