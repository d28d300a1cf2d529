"""The Slack view of an approval, rendered from the row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from runbooks.approvals.blocks import render
from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval, ApprovalState, with_vote

AT = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def approval(**changes) -> Approval:
    base = Approval(
        id="apr_0123456789abcdef0123",
        flow_run_id="5f1c0c3e-0000-0000-0000-000000000000",
        runbook="rolling-node-maintenance",
        title="drain worker-3 (prod-eu1)",
        plan="| node | pods |\n|---|---|\n| worker-3 | 14 |",
        plan_digest="sha256:" + "ab" * 32,
        requester="U0REQ",
        policy=ApproverPolicy.model_validate({"users": ["U0ALICE", "U0BOB"], "min_approvals": 2}),
        requested_at=AT,
        expires_at=AT + timedelta(minutes=30),
    )
    return base.model_copy(update=changes)


def test_pending_request_shows_plan_digest_and_two_confirmed_buttons_carrying_only_the_id():
    text, blocks = render(approval())
    rendered = json.dumps([b.to_dict() for b in blocks])
    actions = next(b.to_dict() for b in blocks if b.type == "actions")

    assert text == "Approval needed: drain worker-3 (prod-eu1)"
    assert "sha256:abab" in rendered and "worker-3 | 14" in rendered
    assert "2 distinct approvers" in rendered
    assert [e["action_id"] for e in actions["elements"]] == ["runbook_approve", "runbook_reject"]
    assert {e["value"] for e in actions["elements"]} == {"apr_0123456789abcdef0123"}
    assert all("confirm" in e for e in actions["elements"])


def test_one_of_two_approvals_keeps_the_buttons_and_says_who():
    partial = with_vote(approval(), user="U0ALICE", approve=True, at=AT)
    _, blocks = render(partial)
    rendered = json.dumps([b.to_dict() for b in blocks])

    assert partial.state is ApprovalState.PENDING
    assert "1 of 2 approvals: <@U0ALICE>" in rendered
    assert any(b.type == "actions" for b in blocks)


def test_decided_request_replaces_buttons_with_who_and_when():
    decided = with_vote(
        with_vote(approval(), user="U0ALICE", approve=True, at=AT),
        user="U0BOB",
        approve=True,
        at=AT,
    )
    text, blocks = render(decided)
    rendered = json.dumps([b.to_dict() for b in blocks])

    assert text == "drain worker-3 (prod-eu1): approved"
    assert not any(b.type == "actions" for b in blocks)
    assert "Approved by <@U0ALICE>, <@U0BOB> at <!date^" in rendered
    assert "2026-11-27 15:00:00 UTC" in rendered  # fallback for clients without date support


def test_a_huge_plan_is_truncated_within_slacks_limits():
    _, blocks = render(approval(plan="x" * 10_000))
    for block in blocks:
        block.validate_json()  # slack_sdk's own limits (section text <= 3000)
    assert "Plan truncated" in json.dumps([b.to_dict() for b in blocks])
