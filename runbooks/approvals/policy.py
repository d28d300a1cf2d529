"""Who may decide an approval, and how a run's own wishes combine with the operator's policy.

Pure: group membership is looked up by the caller, at click time; the operator's configuration
is read by the caller (runbooks/operator_config.py).

Self-approval is decided on identities, not on one name: the requester is every identity the
run knows its starter by (``prefect-user:…``, ``prefect-key:…``, ``os-user:…``, ``actor:…``,
``slack:U…``), and a clicker is their Slack ID plus the identities the operator maps it to. If
the two sets meet, the clicker is the requester. If the starter is unknown, or the clicker has no
mapping while the starter is known only by non-Slack identities, nobody can tell them apart, so
approval is refused (docs/slack-app.md, "Who may decide").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from runbooks.identity import check_identities, clicker_identities, requester_identities
from runbooks.kit.durations import Duration, format_duration

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


def check_user_ids(value: list[str]) -> list[str]:
    bad = [u for u in value if not _USER_ID.match(u)]
    if bad:
        raise ValueError(f"not Slack user IDs (U… or W…): {', '.join(bad)}")
    return value


def check_group_ids(value: list[str]) -> list[str]:
    bad = [g for g in value if not _GROUP_ID.match(g)]
    if bad:
        raise ValueError(f"not Slack user group IDs (S…): {', '.join(bad)}")
    return value


def check_timeout(value: timedelta) -> timedelta:
    if not timedelta(seconds=1) <= value <= timedelta(days=7):
        raise ValueError("approval timeout must be between 1 second and 7 days")
    return value


SlackUserIds = Annotated[list[str], AfterValidator(check_user_ids)]
SlackGroupIds = Annotated[list[str], AfterValidator(check_group_ids)]
ApprovalTimeout = Annotated[Duration, AfterValidator(check_timeout)]


class ApproverPolicy(BaseModel):
    """Slack user IDs and/or user group IDs that may approve, and how many distinct people must.

    IDs, never display names: names can be changed by their owners. Stored on the approval
    record as it was when asked, with the identity map and the requester's identities, so the
    listener decides from the record alone.
    """

    users: SlackUserIds = Field(default_factory=list, description="Slack user IDs (U…/W…)")
    usergroups: SlackGroupIds = Field(
        default_factory=list, description="Slack user group IDs (S…); members at click time"
    )
    min_approvals: int = Field(1, ge=1, le=5, description="Distinct approvers needed")
    allow_self_approval: bool = Field(False, description="May the requester approve?")
    identities: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Slack user ID -> the identities that person starts runs as "
        "(the operator configuration's identity map, copied when the approval is asked).",
    )
    requester_identities: list[str] | None = Field(
        default=None,
        description="Every identity the run knows its starter by; [] when it could not be "
        "identified. None: derive it from the approval's requester name (older records).",
    )

    @field_validator("identities")
    @classmethod
    def _identity_map(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        check_user_ids(list(value))
        for ids in value.values():
            check_identities(ids)
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
    theirs = clicker_identities(clicker, policy.identities)
    wanted = (
        requester_identities(requester)
        if policy.requester_identities is None
        else set(policy.requester_identities)
    )
    is_requester = bool(theirs & wanted)
    if not approve and is_requester:
        return None
    if clicker not in policy.users and clicker not in group_members:
        return "not an approver for this runbook"
    if approve and not policy.allow_self_approval:
        if not wanted:
            return (
                "the requester cannot approve their own request, and this run's starter could "
                "not be identified, so nobody can be told apart from them"
            )
        if is_requester:
            return "the requester cannot approve their own request"
        unmapped = clicker not in policy.identities
        if unmapped and any(not i.startswith("slack:") for i in wanted):
            return (
                "the requester cannot approve their own request, and your Slack user has no "
                "identities in the operator configuration to tell you apart from them"
            )
    if clicker in already_voted:
        return "already approved by this user"
    return None


class ApprovalPolicy(ApproverPolicy):
    """Ask in Slack before a runbook changes anything: who may approve, and how long to wait."""

    timeout: ApprovalTimeout = Field(
        "30m",
        validate_default=True,
        description="Stop the runbook if nobody decides within this long: 30m, 2h, 1d.",
    )

    def approvers(self) -> ApproverPolicy:
        """Only the who, as stored on the approval record."""
        return ApproverPolicy.model_validate(self.model_dump(exclude={"timeout"}))


class ConfiguredApproval(ApprovalPolicy):
    """One runbook's approval policy in the operator configuration (never in run parameters)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _not_from_the_file(cls, data: object) -> object:
        """The identity map is top-level; the requester is what the run knows, never written."""
        for key in ("identities", "requester_identities"):
            if isinstance(data, Mapping) and key in data:
                raise ValueError(f"unknown key {key} (identities go at the top level)")
        return data

    live_runs_require_approval: bool = Field(
        True,
        description="Every run that changes something asks, whatever its parameters say; "
        "false: only runs whose parameters ask for approval.",
    )


class RunApproval(BaseModel):
    """A run's own approval wishes: it may only make the operator's policy stricter.

    Empty (``{}``) asks for approval with the operator's policy as it is.
    """

    model_config = ConfigDict(extra="forbid")

    users: SlackUserIds = Field(
        default_factory=list,
        description="Only these of the configured approvers (Slack user IDs); empty: all.",
    )
    usergroups: SlackGroupIds = Field(
        default_factory=list,
        description="Only these of the configured user groups (S…); empty: all.",
    )
    min_approvals: int | None = Field(
        default=None, ge=1, le=5, description="More distinct approvers than the policy asks."
    )
    timeout: ApprovalTimeout | None = Field(
        default=None, description="A shorter time to decide than the policy's."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_self_approval(cls, data: object) -> object:
        if isinstance(data, Mapping) and "allow_self_approval" in data:
            raise ValueError(
                "allow_self_approval is set only in the operator configuration, never by a run"
            )
        return data


class PolicyLoosened(ValueError):
    """A run asked for a looser policy than the operator's (or for one where none exists)."""


def effective_policy(
    configured: ConfiguredApproval | None,
    requested: RunApproval | None,
    *,
    changes_something: bool,
    identities: Mapping[str, list[str]] | None = None,
    where: str = "the operator configuration",
    runbook: str = "this runbook",
) -> ApprovalPolicy | None:
    """The policy a run is held to, or None for no gate. Stricter-only: a run may name fewer
    approvers, ask for more approvals or a shorter timeout, never the reverse; raises
    PolicyLoosened with what to change. ``identities`` is copied onto the policy."""
    if configured is None:
        if requested is not None and changes_something:
            raise PolicyLoosened(
                f"approval asked for, but {where} has no approval policy for {runbook}; "
                f"add one under approvals.{runbook} (a run cannot name its own approvers)"
            )
        return None
    asks = requested is not None or configured.live_runs_require_approval
    policy = ApprovalPolicy.model_validate(
        configured.model_dump(exclude={"live_runs_require_approval"})
        | {"identities": dict(identities or {})}
    )
    if requested is not None:  # checked on dry runs too: the live run would be refused
        policy = _narrowed(policy, requested, where=where, runbook=runbook)
    return policy if changes_something and asks else None


def _narrowed(
    policy: ApprovalPolicy, requested: RunApproval, *, where: str, runbook: str
) -> ApprovalPolicy:
    """``policy`` with the run's stricter wishes applied; PolicyLoosened for a looser one."""
    update: dict[str, object] = {}
    for field, allowed in (("users", policy.users), ("usergroups", policy.usergroups)):
        chosen: list[str] = getattr(requested, field)
        foreign = [x for x in chosen if x not in allowed]
        if foreign:
            raise PolicyLoosened(
                f"approval.{field}: {', '.join(foreign)} not among the approvers in {where} "
                f"for {runbook}; a run may only narrow them"
            )
    if requested.users or requested.usergroups:
        update |= {"users": requested.users, "usergroups": requested.usergroups}
    if requested.min_approvals is not None:
        if requested.min_approvals < policy.min_approvals:
            raise PolicyLoosened(
                f"approval.min_approvals: {requested.min_approvals} is fewer than the "
                f"{policy.min_approvals} {where} asks for {runbook}"
            )
        update["min_approvals"] = requested.min_approvals
    if requested.timeout is not None:
        if requested.timeout > policy.timeout:
            raise PolicyLoosened(
                f"approval.timeout: {format_duration(requested.timeout)} is longer than the "
                f"{format_duration(policy.timeout)} {where} allows for {runbook}"
            )
        update["timeout"] = requested.timeout
    return ApprovalPolicy.model_validate(policy.model_dump() | update)
