"""What one run read from the cluster, as the API returned it (JSON objects), for the checks.

Each resource type is read once for the whole run (one LIST), so a check never reads on its
own. A read that failed is kept with its reason: the checks that need it report ``error``
naming it, the others run as usual.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


class ReadFailed(RuntimeError):
    """A check needed something the run could not read (reported as the check's ``error``)."""


class Probe(BaseModel):
    """A health endpoint's answer: the status code, and the failing lines of ``?verbose``."""

    status: int
    failed: list[str] = []

    @property
    def ok(self) -> bool:
        return self.status == 200


class CertSeen(BaseModel):
    """A certificate the run looked at (or why it could not)."""

    source: str  # "API server 127.0.0.1:6443", "file /etc/...", "secret ns/name"
    subject: str = ""
    not_after: dt.datetime | None = None
    problem: str | None = None  # not found, not a certificate, ...


@dataclass
class ClusterSnapshot:
    """Everything read, by name (``nodes``, ``apiservices``, ...), or the reason it failed."""

    reads: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def get(self, name: str) -> Any:
        if name in self.failures:
            raise ReadFailed(f"could not read {name}: {self.failures[name]}")
        if name not in self.reads:
            raise ReadFailed(f"{name} was not read in this run")
        return self.reads[name]
