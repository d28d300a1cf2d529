"""The shapes of the audit trail: who (actor) did what (action) to which target, when, and why.

Pydantic at the boundary so a malformed record is refused before it reaches the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["intent", "outcome", "event"]
PHASES: tuple[Phase, ...] = ("intent", "outcome", "event")

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"


def format_time(moment: datetime) -> str:
    """One fixed-width UTC form: the same hash on every backend, and text that sorts by time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_text() -> str:
    return format_time(datetime.now(UTC))


class AuditContext(BaseModel):
    """Who is acting, for which runbook and Prefect flow run; set once around a run's records."""

    model_config = ConfigDict(frozen=True)

    runbook: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    flow_run_id: str | None = Field(default=None, max_length=100)


class NewRecord(BaseModel):
    """What a caller asks to append; the store adds sequence, time and hashes."""

    model_config = ConfigDict(frozen=True)

    runbook: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    flow_run_id: str | None = Field(default=None, max_length=100)
    action: str = Field(min_length=1, max_length=100, pattern=_NAME)
    target_kind: str = Field(default="node", min_length=1, max_length=50, pattern=_NAME)
    target: str = Field(min_length=1, max_length=500)
    phase: Phase = "event"
    outcome: str | None = Field(default=None, max_length=100)
    intent_seq: int | None = Field(default=None, ge=1)
    approval_id: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)


class AuditRecord(BaseModel):
    """One stored record, exactly as it was hashed."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: str
    runbook: str
    flow_run_id: str | None
    actor: str
    action: str
    target_kind: str
    target: str
    phase: Phase
    outcome: str | None
    intent_seq: int | None
    approval_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def time(self) -> datetime:
        return datetime.strptime(self.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class RecordFilter(BaseModel):
    """Which records an auditor asks for; every field narrows, none means everything."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str | None = None
    target: str | None = None
    target_kind: str | None = None
    actor: str | None = None
    action: str | None = None
    runbook: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = Field(default=None, ge=1)
    newest_first: bool = False


class RunSummary(BaseModel):
    """What the audit store knows about one flow run, for ``runbook history``."""

    flow_run_id: str
    runbook: str
    actor: str
    first_at: str
    last_at: str
    records: int
    failed: int
