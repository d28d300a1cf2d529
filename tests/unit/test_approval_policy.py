"""Who may decide an approval, and what a run may change about its policy: one row per case,
in the order the listener checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from runbooks.approvals.policy import (
    ApproverPolicy,
    ConfiguredApproval,
    PolicyLoosened,
    RunApproval,
    effective_policy,
    refusal,
)

POLICY = ApproverPolicy.model_validate({"users": ["U0ALICE", "U0REQ"], "usergroups": ["S0ONCALL"]})
SELF_OK = ApproverPolicy.model_validate({"users": ["U0REQ"], "allow_self_approval": True})


@pytest.mark.parametrize(
    ("policy", "clicker", "members", "voted", "approve", "expected"),
    [
        (POLICY, "U0ALICE", [], [], True, None),
        (POLICY, "U0CAROL", ["U0CAROL"], [], True, None),  # member of the group now
        (POLICY, "U0MALLORY", ["U0CAROL"], [], True, "not an approver for this runbook"),
        (POLICY, "U0REQ", [], [], True, "the requester cannot approve their own request"),
        (POLICY, "U0REQ", [], [], False, None),  # the requester may withdraw
        (POLICY, "U0ALICE", [], ["U0ALICE"], True, "already approved by this user"),
        (SELF_OK, "U0REQ", [], [], True, None),
        (POLICY, "U0MALLORY", [], [], False, "not an approver for this runbook"),
    ],
)
def test_who_may_decide(policy, clicker, members, voted, approve, expected):
    assert (
        refusal(
            policy,
            clicker=clicker,
            requester="U0REQ",
            group_members=members,
            already_voted=voted,
            approve=approve,
        )
        == expected
    )


# Slack users mapped to the identities they start runs as (the operator configuration).
IDENTITIES = {
    "U0ALICE": ["os-user:alice", "prefect-user:alice@example.com"],
    "U0BOB": ["os-user:bob", "prefect-key:bob-ci"],
}
SELF = "the requester cannot approve their own request"
UNKNOWN = "could not be identified"
UNMAPPED = "no identities in the operator configuration"


@pytest.mark.parametrize(
    ("started_by", "clicker", "approve", "expected"),
    [
        (["os-user:alice"], "U0ALICE", True, SELF),  # alice ran the CLI, clicks in Slack
        (["prefect-user:alice@example.com"], "U0ALICE", True, SELF),  # Prefect Cloud user
        (["prefect-key:bob-ci"], "U0BOB", True, SELF),  # bob's API key started it
        (["os-user:alice", "actor:alice"], "U0BOB", True, None),  # someone else: fine
        (["os-user:alice"], "U0CAROL", True, UNMAPPED),  # carol could be alice
        (["slack:U0ALICE"], "U0CAROL", True, None),  # started from Slack: ids compare
        ([], "U0BOB", True, UNKNOWN),  # nobody known started it: anyone could be them
        ([], "U0BOB", False, None),  # but an approver may still reject
        (["os-user:alice"], "U0ALICE", False, None),  # the requester may withdraw
        (["prefect-schedule:weekly"], "U0BOB", True, None),  # the schedule started it
    ],
)
def test_the_requester_is_recognised_under_any_of_their_identities(
    started_by, clicker, approve, expected
):
    policy = ApproverPolicy.model_validate(
        {
            "users": ["U0ALICE", "U0BOB", "U0CAROL"],
            "identities": IDENTITIES,
            "requester_identities": started_by,
        }
    )
    reason = refusal(
        policy,
        clicker=clicker,
        requester="whatever the record says",
        group_members=[],
        already_voted=[],
        approve=approve,
    )
    assert (reason is None) if expected is None else (expected in (reason or "")), reason


def test_allow_self_approval_from_the_operator_lets_the_requester_approve():
    policy = ApproverPolicy.model_validate(
        {
            "users": ["U0ALICE"],
            "identities": IDENTITIES,
            "requester_identities": [],
            "allow_self_approval": True,
        }
    )
    kwargs: dict[str, Any] = {"requester": "", "group_members": [], "already_voted": []}
    assert refusal(policy, clicker="U0ALICE", **kwargs) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "at least one user or user group"),
        ({"users": ["alice"]}, "not Slack user IDs (U… or W…): alice"),
        ({"usergroups": ["oncall"]}, "not Slack user group IDs (S…): oncall"),
        ({"users": ["U0ALICE"], "min_approvals": 0}, "greater than or equal to 1"),
        ({"users": ["U0A"], "identities": {"U0A": ["alice"]}}, "not identities"),
    ],
)
def test_a_policy_nobody_could_satisfy_is_refused_with_what_is_wrong(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ApproverPolicy(**fields)


CONFIGURED = ConfiguredApproval.model_validate(
    {"users": ["U0ALICE", "U0BOB"], "usergroups": ["S0ONCALL"], "min_approvals": 1,
     "timeout": "30m"}
)  # fmt: skip
OPTIONAL = CONFIGURED.model_copy(update={"live_runs_require_approval": False})


@pytest.mark.parametrize(
    ("configured", "asked", "live", "expected"),
    [
        # (operator's policy, the run's approval parameter, changes something?, result)
        (CONFIGURED, None, True, {"users": ["U0ALICE", "U0BOB"], "min_approvals": 1}),
        (CONFIGURED, None, False, None),  # a dry run changes nothing: no gate
        (OPTIONAL, None, True, None),  # the operator lets runs choose
        (OPTIONAL, {}, True, {"users": ["U0ALICE", "U0BOB"], "timeout": "30m"}),
        (None, None, True, None),  # no policy configured, none asked
        (CONFIGURED, {"min_approvals": 2}, True, {"min_approvals": 2}),  # stricter: fine
        (CONFIGURED, {"timeout": "5m"}, True, {"timeout": "5m"}),
        (CONFIGURED, {"users": ["U0BOB"]}, True, {"users": ["U0BOB"], "usergroups": []}),
        (CONFIGURED, {"users": ["U0MALLORY"]}, True, "U0MALLORY not among the approvers"),
        (CONFIGURED, {"usergroups": ["S0FRIENDS"]}, True, "S0FRIENDS not among"),
        (CONFIGURED.model_copy(update={"min_approvals": 2}), {"min_approvals": 1}, True,
         "1 is fewer than the 2"),
        (CONFIGURED, {"timeout": "2h"}, True, "2h is longer than the 30m"),
        (None, {}, True, "has no approval policy for rolling-node-maintenance"),
    ],
)  # fmt: skip
def test_a_run_may_make_the_policy_stricter_never_looser(configured, asked, live, expected):
    requested = None if asked is None else RunApproval.model_validate(asked)

    def effective() -> Any:
        return effective_policy(
            configured, requested, changes_something=live, runbook="rolling-node-maintenance"
        )

    if isinstance(expected, str):
        with pytest.raises(PolicyLoosened, match=re.escape(expected)):
            effective()
        return
    policy = effective()
    if expected is None:
        assert policy is None
        return
    assert policy is not None
    seen = policy.model_dump(mode="json")
    assert {k: seen[k] for k in expected} == expected
    assert policy.allow_self_approval is False


def test_a_run_cannot_allow_self_approval():
    with pytest.raises(ValidationError, match="set only in the operator configuration"):
        RunApproval.model_validate({"allow_self_approval": True})
