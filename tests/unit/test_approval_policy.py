"""Who may decide an approval: one row per case, in the order the listener checks."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from runbooks.approvals.policy import ApproverPolicy, refusal

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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "at least one user or user group"),
        ({"users": ["alice"]}, "not Slack user IDs (U… or W…): alice"),
        ({"usergroups": ["oncall"]}, "not Slack user group IDs (S…): oncall"),
        ({"users": ["U0ALICE"], "min_approvals": 0}, "greater than or equal to 1"),
    ],
)
def test_a_policy_nobody_could_satisfy_is_refused_with_what_is_wrong(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ApproverPolicy(**fields)
