"""Who may decide an approval. Pure: group membership is looked up by the caller, at click time."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta

from pydantic import BaseModel, Field, field_validator, model_validator

from runbooks.maintenance.durations import Duration

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


class ApproverPolicy(BaseModel):
    """Slack user IDs and/or user group IDs that may approve, and how many distinct people must.

    IDs, never display names: names can be changed by their owners.
    """

    users: list[str] = Field(default_factory=list, description="Slack user IDs (U…/W…)")
    usergroups: list[str] = Field(
        default_factory=list, description="Slack user group IDs (S…); members at click time"
    )
    min_approvals: int = Field(1, ge=1, le=5, description="Distinct approvers needed")
    allow_self_approval: bool = Field(False, description="May the requester approve?")

    @field_validator("users")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not _USER_ID.match(u)]
        if bad:
            raise ValueError(f"not Slack user IDs (U… or W…): {', '.join(bad)}")
        return value

    @field_validator("usergroups")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        bad = [g for g in value if not _GROUP_ID.match(g)]
        if bad:
            raise ValueError(f"not Slack user group IDs (S…): {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _someone_can_approve(self) -> ApproverPolicy:
        if not self.users and not self.usergroups:
            raise ValueError("an approver policy needs at least one user or user group")
        return self


def refusal(
    policy: ApproverPolicy,
    *,
    clicker: str,
    requester: str,
    group_members: Collection[str],
    already_voted: Collection[str],
    approve: bool = True,
) -> str | None:
    """Why ``clicker`` may not decide, or None if they may. Checked in the documented order.

    The requester may withdraw (reject) their own request, never approve it.
    """
    if not approve and clicker == requester:
        return None
    if clicker not in policy.users and clicker not in group_members:
        return "not an approver for this runbook"
    if clicker == requester and not policy.allow_self_approval:
        return "the requester cannot approve their own request"
    if clicker in already_voted:
        return "already approved by this user"
    return None


class ApprovalPolicy(ApproverPolicy):
    """Ask in Slack before a runbook changes anything: who may approve, and how long to wait.

    The runbook's parameter (``approval``); unset means no gate.
    """

    timeout: Duration = Field(
        "30m",
        validate_default=True,
        description="Stop the runbook if nobody decides within this long: 30m, 2h, 1d.",
    )

    @field_validator("timeout")
    @classmethod
    def _sane_timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(days=7):
            raise ValueError("approval timeout must be between 1 second and 7 days")
        return value

    def approvers(self) -> ApproverPolicy:
        """Only the who, as stored on the approval record."""
        return ApproverPolicy.model_validate(self.model_dump(exclude={"timeout"}))
