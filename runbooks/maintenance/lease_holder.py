"""Who holds the maintenance Lease, as its holderIdentity says, and whether that holder is a
process of this machine that is gone.

The identity names the run, the user, the host, the host's boot ID and the PID:
``rolling-node-maintenance run local-1a2b (ana@laptop, boot 5f0c..., pid 4242)``. After a
``kill -9`` in a terminal, a rerun on the same machine can see for itself that the holder's
process no longer exists and take the Lease over at once instead of waiting for it to expire.
The boot ID is what makes "the same machine" safe: two machines that share a hostname (``vm``,
``ubuntu``) have different boot IDs, so neither takes over the other's live Lease.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_IDENTITY = re.compile(
    r"^(?P<runbook>\S+) run (?P<run_id>\S+) "
    r"\((?P<user>[^@()\s]+)@(?P<host>[^,()\s]+)"
    r"(?:, boot (?P<boot>[0-9a-fA-F-]+))?"
    r", pid (?P<pid>\d+)\)$"
)


@dataclass(frozen=True)
class Machine:
    """This machine as a holder identity names it: hostname and boot ID (None if unknown)."""

    host: str
    boot: str | None


@dataclass(frozen=True)
class HolderIdentity:
    runbook: str
    run_id: str
    user: str
    host: str
    boot: str | None
    pid: int

    def __str__(self) -> str:
        boot = f", boot {self.boot}" if self.boot else ""
        return f"{self.runbook} run {self.run_id} ({self.user}@{self.host}{boot}, pid {self.pid})"

    @classmethod
    def parse(cls, text: str | None) -> HolderIdentity | None:
        """The identity, or None for one this engine did not write (another tool, a person)."""
        found = _IDENTITY.match(text or "")
        if found is None:
            return None
        return cls(
            runbook=found["runbook"],
            run_id=found["run_id"],
            user=found["user"],
            host=found["host"],
            boot=found["boot"],
            pid=int(found["pid"]),
        )

    def runs_on(self, machine: Machine) -> bool:
        """Written on ``machine`` since its last boot: only then does its PID mean anything
        here. Without a boot ID on either side, a shared hostname is not proof enough."""
        return self.host == machine.host and self.boot is not None and self.boot == machine.boot


def dead_local_holder(
    holder: str | None, machine: Machine, alive: Callable[[int], bool], own_pid: int
) -> HolderIdentity | None:
    """The holder, when it is a process of this machine that no longer exists (safe to take
    over at once); None when it may still be running somewhere (wait for it to expire)."""
    identity = HolderIdentity.parse(holder)
    if identity is None or not identity.runs_on(machine):
        return None
    if identity.pid == own_pid or alive(identity.pid):
        return None
    return identity
