"""The approval record: one row per gate; a state machine whose final states never change."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from runbooks.approvals.policy import ApproverPolicy
from runbooks.kit.digest import sha256_hex


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not ApprovalState.PENDING


class Vote(BaseModel):
    """One person's click that counted: who, which way, when (Slack's action_ts when known)."""

    user: str
    approve: bool
    at: datetime


class Approval(BaseModel):
    """What is waiting, for which plan, under which policy, and what has been decided."""

    id: str
    flow_run_id: str
    runbook: str
    title: str
    plan: str = Field(description="The plan as shown to approvers (Markdown)")
    plan_digest: str
    requester: str
    policy: ApproverPolicy
    state: ApprovalState = ApprovalState.PENDING
    votes: list[Vote] = Field(default_factory=list)
    requested_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    reason: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    resume_after: datetime | None = Field(
        None,
        description="Set while a decision has yet to reach the waiting run: a sweep may "
        "(re)try the resume after this time. None once resumed and audited, and for "
        "decisions the run made itself (its own expiry, a cancelled post).",
    )
    version: int = 0

    @property
    def approvers(self) -> list[str]:
        return [v.user for v in self.votes if v.approve]

    @property
    def rejecter(self) -> str | None:
        return next((v.user for v in self.votes if not v.approve), None)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def pause_key(self) -> str:
        """Prefect pause keys allow only ``[a-z0-9-]``; the id is minted per attempt."""
        return "approval-" + self.id.lower().replace("_", "-")


def new_approval_id() -> str:
    """Opaque, unguessable: it is the button value, so it must carry no meaning."""
    return "apr_" + secrets.token_hex(10)


def plan_digest(plan_text: str) -> str:
    """``sha256:<hex>`` of the plan as shown, for plans that bring no digest of their own."""
    return "sha256:" + sha256_hex(plan_text)


def utcnow() -> datetime:
    return datetime.now(UTC)


def with_vote(approval: Approval, *, user: str, approve: bool, at: datetime) -> Approval:
    """The record after one more counted click: one rejection ends the gate; approval needs
    ``min_approvals`` distinct people."""
    votes = [*approval.votes, Vote(user=user, approve=approve, at=at)]
    update: dict[str, object] = {"votes": votes}
    if not approve:
        update |= {
            "state": ApprovalState.REJECTED,
            "decided_at": at,
            "reason": f"rejected by {user}",
        }
    elif len({v.user for v in votes if v.approve}) >= approval.policy.min_approvals:
        update |= {"state": ApprovalState.APPROVED, "decided_at": at}
    return approval.model_copy(update=update)
