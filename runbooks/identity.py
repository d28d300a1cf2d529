"""Who started a run, as identities that can be compared with who clicks Approve.

An identity is ``kind:name``. Kinds:

* ``prefect-user:<name or id>``  a Prefect Cloud user (the flow run's ``created_by``)
* ``prefect-key:<name or id>``   a Prefect Cloud service account / API key
* ``prefect-schedule:<slug>``, ``prefect-automation:<name>``  runs Prefect started itself
* ``os-user:<login>``            the OS user who ran ``runbook`` on their own machine
* ``actor:<name>``               ``RUNBOOK_ACTOR`` set where ``runbook`` was run, or a name
                                 a flow passes as its requester
* ``slack:<U…>``                 a Slack user (every clicker has their own)

Only what the starter cannot choose counts: the OS user and ``RUNBOOK_ACTOR`` of the CLI process
that started the run in itself (``started_from_cli``), and Prefect's ``created_by``. Run tags,
parameters and a worker's own user are not identities of the starter.
"""

from __future__ import annotations

import contextvars
import getpass
import os
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

KINDS = (
    "prefect-user",
    "prefect-key",
    "prefect-schedule",
    "prefect-automation",
    "os-user",
    "actor",
    "slack",
)
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
# Prefect's created_by.type -> our kind
_PREFECT_KINDS = {
    "USER": "prefect-user",
    "SERVICE_ACCOUNT": "prefect-key",
    "API_KEY": "prefect-key",
    "SCHEDULE": "prefect-schedule",
    "AUTOMATION": "prefect-automation",
}

_CLI_STARTER: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "runbook_cli_starter", default=None
)


def check_identities(values: Collection[str]) -> Collection[str]:
    """ValueError naming each identity that is not ``kind:name`` with a known kind."""
    bad = [v for v in values if v.partition(":")[0] not in KINDS or not v.partition(":")[2]]
    if bad:
        raise ValueError(
            f"not identities ({', '.join(k + ':<name>' for k in KINDS)}): {', '.join(bad)}"
        )
    return values


def clicker_identities(slack_user: str, mapped: Mapping[str, list[str]]) -> set[str]:
    """A Slack user's own ID plus what the operator maps it to."""
    return {f"slack:{slack_user}", *mapped.get(slack_user, [])}


def requester_identities(requester: str) -> set[str]:
    """An explicit requester name as identities: ``kind:name`` as is, a Slack user ID as
    ``slack:``, anything else as ``actor:``; empty for no name."""
    name = requester.strip()
    if not name:
        return set()
    if name.partition(":")[0] in KINDS:
        return {name}
    return {f"slack:{name}" if _SLACK_USER.match(name) else f"actor:{name}"}


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def local_identities() -> tuple[str, ...]:
    """The person at this terminal: their OS user and, if set, ``RUNBOOK_ACTOR``."""
    found = [f"os-user:{os_user()}"]
    actor = os.environ.get("RUNBOOK_ACTOR", "").strip()
    if actor:
        found.append(f"actor:{actor}")
    return tuple(found)


@contextmanager
def started_from_cli() -> Iterator[None]:
    """Mark runs started in this process by the CLI as started by the local user."""
    token = _CLI_STARTER.set(local_identities())
    try:
        yield
    finally:
        _CLI_STARTER.reset(token)


def cli_starter() -> tuple[str, ...] | None:
    """The local user's identities if the CLI started this run in this process, else None."""
    return _CLI_STARTER.get()


def from_created_by(created_by: Any) -> list[str]:
    """Identities from a Prefect flow run's ``created_by`` (type, id, display_value)."""
    if created_by is None:
        return []
    kind = _PREFECT_KINDS.get(str(getattr(created_by, "type", "") or "").upper())
    if kind is None:
        return []
    names = [getattr(created_by, "display_value", None), getattr(created_by, "id", None)]
    return [f"{kind}:{n}" for n in dict.fromkeys(str(n) for n in names if n)]
