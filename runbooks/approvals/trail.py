"""Approval events in the audit trail: request, decide, refuse (with the reason), expire.

Written with the approval's own runbook and flow run, so the listener (which runs outside any
flow) files its records under the run that waits, with the Slack user as the actor.
"""

from __future__ import annotations

from typing import Any

from runbooks.approvals.record import Approval
from runbooks.audit import NewRecord, RecordFilter, get_store

REQUEST = "approval.request"
DECIDE = "approval.decide"
REFUSE = "approval.refuse"
EXPIRE = "approval.expire"
CANCEL = "approval.cancel"
RESUME = "approval.resume"


def audit(
    action: str,
    *,
    approval_id: str,
    actor: str,
    approval: Approval | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one approval event; ``approval`` is None when the id named no approval."""
    record = NewRecord(
        runbook=approval.runbook if approval else "approvals",
        actor=actor,
        flow_run_id=approval.flow_run_id if approval else None,
        action=action,
        target_kind="approval",
        target=approval_id[:500] or "<empty>",
        phase="event",
        outcome=outcome,
        approval_id=approval_id[:200] or None,
        details=details or {},
    )
    return get_store().append(record).seq


def recorded(action: str, approval_id: str, *, outcome: str) -> bool:
    """Is there already an ``action`` record with ``outcome`` for this approval?"""
    query = RecordFilter(target=approval_id, target_kind="approval", action=action, outcome=outcome)
    return bool(get_store().records(query))
