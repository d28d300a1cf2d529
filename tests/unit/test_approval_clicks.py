"""The ordered checks a click goes through, against the Slack stand-in (real HTTP, real
slack-sdk) and a real approvals table. These clicks never reach a decision that resumes a
run; the end-to-end tests in tests/slack cover those with the real Prefect engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import pytest

from devtools.slack_standin import ClickSimulator, SlackStandin
from devtools.slack_standin.server import APP_ID, TEAM_ID, Message
from runbooks.approvals.blocks import render
from runbooks.approvals.clicks import ClickHandler, Install, parse_click
from runbooks.approvals.config import SlackSettings
from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval, ApprovalState, new_approval_id
from runbooks.approvals.slack_client import web_client
from runbooks.approvals.store import ApprovalStore
from runbooks.audit import AuditStore


def must_not_resume(approval: Approval) -> NoReturn:
    raise AssertionError(f"a refused or partial click resumed run {approval.flow_run_id}")


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    with SlackStandin() as web:
        for user in ("U0REQ", "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"):
            web.add_user(user)
        web.add_user("U0GUEST", is_restricted=True)
        web.add_user("U0GONE", deleted=True)
        web.add_user("U0BOTTY", is_bot=True)
        web.add_usergroup("S0ONCALL", ["U0CAROL", "U0GUEST", "U0GONE", "U0BOTTY"])
        yield web


@pytest.fixture
def store(tmp_path: Path) -> ApprovalStore:
    return ApprovalStore(AuditStore(f"sqlite:///{tmp_path / 'audit.db'}").engine)


@pytest.fixture
def handler(slack: SlackStandin, store: ApprovalStore) -> ClickHandler:
    settings = SlackSettings.model_validate(
        {"SLACK_BOT_TOKEN": slack.bot_token, "RUNBOOK_SLACK_API_URL": slack.api_url}
    )
    return ClickHandler(
        store, web_client(settings), Install(TEAM_ID, APP_ID), resume=must_not_resume
    )


@pytest.fixture
def approval(store: ApprovalStore, slack: SlackStandin) -> Approval:
    now = datetime.now(UTC)
    approval = Approval(
        id=new_approval_id(),
        flow_run_id="00000000-0000-0000-0000-000000000000",
        runbook="demo",
        title="drain worker-3",
        plan="plan",
        plan_digest="sha256:00",
        requester="U0REQ",
        policy=ApproverPolicy.model_validate(
            {"users": ["U0ALICE", "U0BOB", "U0REQ"], "usergroups": ["S0ONCALL"], "min_approvals": 2}
        ),
        requested_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    store.create(approval)
    return approval


def click(slack: SlackStandin, approval: Approval, clicker: str, **payload_changes):
    """``clicker`` pressing Approve on the message as the gate would have posted it."""
    text, blocks = render(approval)
    message = Message("C0OPS", "1.000001", text, [b.to_dict() for b in blocks])
    slack.messages.append(message)
    payload = ClickSimulator(slack).payload(message, user=clicker, action_id="runbook_approve")
    for key, value in payload_changes.items():
        payload[key] = value
    parsed = parse_click(payload, "http")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("user", "changes", "reason"),
    [
        ("U0ALICE", {"api_app_id": "A0OTHER"}, "click for another app (A0OTHER)"),
        ("U0ALICE", {"team": {"id": "T0OTHER"}}, "click from another workspace (T0OTHER)"),
        (
            "U0ALICE",
            {"user": {"id": "U0ALICE", "team_id": "T0EXTERNAL"}},
            "user from another workspace (T0EXTERNAL)",
        ),
        ("U0MALLORY", {}, "not an approver for this runbook"),
        ("U0REQ", {}, "the requester cannot approve their own request"),
        ("U0GUEST", {}, "guest accounts cannot approve"),
        ("U0GONE", {}, "not an approver for this runbook"),  # deactivated: not listed as member
        ("U0BOTTY", {}, "bots cannot approve"),
    ],
)
def test_a_click_that_fails_a_check_is_refused_with_the_reason(
    slack, handler, approval, store, user, changes, reason
):
    outcome = handler.handle(click(slack, approval, user, **changes))

    assert (outcome.result, outcome.reason) == ("refused", reason)
    assert store.get(approval.id).state is ApprovalState.PENDING


def test_group_membership_is_checked_at_click_time(slack, handler, approval):
    slack.usergroups["S0ONCALL"].remove("U0CAROL")  # removed from on-call after the request

    outcome = handler.handle(click(slack, approval, "U0CAROL"))

    assert outcome.reason == "not an approver for this runbook"


def test_group_lookup_failure_fails_closed(slack, handler, approval):
    slack.inject("usergroups.users.list", error="internal_error")

    outcome = handler.handle(click(slack, approval, "U0CAROL"))

    assert outcome.reason == "could not check user group membership (internal_error)"


def test_first_of_two_approvals_counts_without_resuming(slack, handler, approval, store):
    outcome = handler.handle(click(slack, approval, "U0CAROL"))
    again = handler.handle(click(slack, approval, "U0CAROL"))

    assert outcome.result == "counted"
    assert again.reason == "already approved by this user"
    assert store.get(approval.id).approvers == ["U0CAROL"]


def test_the_clicker_is_told_why_in_an_ephemeral_message(slack, handler, approval):
    handler.handle(click(slack, approval, "U0MALLORY"))

    assert [(e.user, e.text) for e in slack.ephemerals] == [
        ("U0MALLORY", "Not recorded: not an approver for this runbook.")
    ]


def test_a_click_on_an_expired_approval_expires_it_and_updates_the_message(slack, store, approval):
    settings = SlackSettings.model_validate(
        {"SLACK_BOT_TOKEN": slack.bot_token, "RUNBOOK_SLACK_API_URL": slack.api_url}
    )
    resumed: list[str] = []
    later = ClickHandler(
        store,
        web_client(settings),
        Install(TEAM_ID, APP_ID),
        clock=lambda: approval.expires_at + timedelta(seconds=1),
        resume=lambda a: resumed.append(a.state.value) or "finished",  # type: ignore[func-returns-value]
    )
    store.set_message(approval.id, channel="C0OPS", ts="1.000001")
    the_click = click(slack, approval, "U0ALICE")

    outcome = later.handle(the_click)

    assert outcome.reason == "approval expired"
    assert store.get(approval.id).state is ApprovalState.EXPIRED
    assert "Expired at" in str(slack.find("C0OPS", "1.000001").blocks)
    assert resumed == ["expired"]  # the waiting run is woken to stop with the reason
