"""A decision is recorded but the run cannot be resumed (the Prefect API is unreachable at
that moment): the listener's sweep resumes it later, not hours later at the time limit, and
the audit trail shows the resume. Real Prefect (the test harness), the real listener, a real
connection failure (the first resume talks to a port nobody listens on)."""

from __future__ import annotations

import socket

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from devtools.slack_standin import ClickSimulator, SlackStandin
from runbooks.approvals.listener import Listener
from runbooks.approvals.record import Approval
from runbooks.approvals.resume import Resumed, resume_waiting_run
from tests.slack.conftest import (
    APPROVERS,
    approval_message,
    approval_of,
    policy,
    start_gated_run,
    wait_for,
)
from tests.slack.helpers import approval_trail, run_state

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def unreachable_api() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"  # closed again: connection refused


def test_a_decision_whose_resume_failed_is_resumed_by_the_sweep_and_audited(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    attempts: list[str] = []

    def resume_with_prefect_down_once(approval: Approval) -> Resumed:
        if not attempts:
            attempts.append("unreachable")
            with temporary_settings({PREFECT_API_URL: unreachable_api()}):
                return resume_waiting_run(approval)
        attempts.append("reachable")
        return resume_waiting_run(approval)

    http_listener.handler.resume = resume_with_prefect_down_once
    run = start_gated_run(policy(), ttl_seconds=120)
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
    )

    result = run.wait(timeout=30)  # the time limit is 120 s: this is the sweep, not expiry
    assert result["state"].is_completed(), result["state"]
    assert attempts[:2] == ["unreachable", "reachable"]
    trail = [(r.action, r.outcome) for r in approval_trail(approval.id)]
    assert ("approval.decide", "approved") in trail
    assert ("approval.resume", "resumed") in trail
    resume = next(r for r in approval_trail(approval.id) if r.action == "approval.resume")
    assert resume.details.get("retry") is True
