"""The ``runbook`` command. Each concern keeps its sub-commands in a module of its own.

Sub-command modules are imported only when their command runs: several pull in Prefect or
slack-sdk (seconds of imports), which `runbook cluster up` or `runbook audit verify` never need.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from runbooks.cli.errors import OneLineUsageErrors

# name -> (module, attribute, help); a Typer attribute is a command group, a function a command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "maintain": ("runbooks.cli.maintain", "maintain", "Roll maintenance across nodes."),
    "backup-check": (
        "runbooks.cli.backup_check",
        "backup_check",
        "Check that backups are there, fresh, complete and restorable.",
    ),
    "upgrade": (
        "runbooks.cli.upgrade",
        "upgrade",
        "Upgrade the cluster: preflight, approval, control plane, nodes, verify.",
    ),
    "release": ("runbooks.cli.release", "release", "Uncordon nodes this engine cordoned."),
    "verify": ("runbooks.cli.verify", "verify", "Verify a cluster against its baseline."),
    "cluster": ("runbooks.cli.cluster", "app", "Run a local Kubernetes control plane."),
    "audit": ("runbooks.cli.audit", "app", "Show, verify and export the audit trail."),
    "history": ("runbooks.cli.history", "history", "Runbook runs, newest first."),
    "listen": ("runbooks.cli.listen", "listen", "Receive Slack approval clicks."),
    "serve": ("runbooks.cli.serve", "serve", "Prefect server, worker and listener on one machine."),
}


def load_command(name: str) -> Any:
    """Build the click command for ``name`` from its module (imported now, not at start-up)."""
    module_name, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module_name), attribute)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(name=name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class RunbookCommands(OneLineUsageErrors):
    """Lists every sub-command by name and help, and loads one only when it is used."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="runbook",
    cls=RunbookCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main() -> None:
    """Kubernetes cluster operations runbooks, run as Prefect flows."""


if __name__ == "__main__":  # pragma: no cover
    app()
