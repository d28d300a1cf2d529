"""Keep the Slack message in step with the row, and move timed-out approvals to expired.

Shared by the gate (its own expiry) and the listener (clicks, sweeps): one rendering, one
transition, wherever it happens.
"""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from runbooks.approvals import trail
from runbooks.approvals.blocks import render
from runbooks.approvals.record import Approval, ApprovalState
from runbooks.approvals.store import ApprovalStore

log = logging.getLogger("runbooks.approvals")


def show(slack: WebClient, approval: Approval, attempts: int = 2) -> bool:
    """Re-render the message from the row. A Slack failure is logged and never undoes a
    decision; the next change (or a click) renders again."""
    if not approval.slack_channel or not approval.slack_ts:
        return False
    text, blocks = render(approval)
    for attempt in range(1, attempts + 1):
        try:
            slack.chat_update(
                channel=approval.slack_channel, ts=approval.slack_ts, text=text, blocks=blocks
            )
            return True
        except SlackApiError as exc:
            log.warning(
                "chat.update of approval %s failed (attempt %d): %s",
                approval.id,
                attempt,
                exc.response.get("error"),
            )
    return False


def expire(
    store: ApprovalStore,
    slack: WebClient,
    approval: Approval,
    *,
    now: datetime,
    actor: str,
    resume_after: datetime | None = None,
) -> bool:
    """Pending → expired, once across every process; audited and shown. True if this call did it.

    ``resume_after``: the listener expires for a run that waits elsewhere, so the row stays due
    for a resume until that is done; the gate expiring its own approval passes None."""
    expired = approval.model_copy(
        update={
            "state": ApprovalState.EXPIRED,
            "decided_at": now,
            "reason": "nobody decided before the time limit",
            "resume_after": resume_after,
        }
    )
    if not store.compare_and_set(approval, expired, now=now):
        return False
    trail.audit(
        trail.EXPIRE,
        approval_id=approval.id,
        actor=actor,
        approval=expired,
        outcome="expired",
        details={"expires_at": approval.expires_at.isoformat()},
    )
    show(slack, expired)
    return True
