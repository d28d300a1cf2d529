"""The gate end to end over the HTTP transport: real Prefect pause/resume, the real listener,
slack-sdk against the stand-in, clicks signed as Slack signs them."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from runbooks.approvals.listener import Listener
from runbooks.approvals.record import ApprovalState
from runbooks.approvals.store import ApprovalStore
from runbooks.slack_standin import ClickSimulator, SlackStandin
from tests.slack.conftest import (
    APPROVERS,
    approval_message,
    approval_of,
    policy,
    start_gated_run,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def run_state(flow_run_id: str) -> str:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    return state.type.value if state else "NONE"


def test_approve_resumes_the_run_and_it_proceeds(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run = start_gated_run(policy())
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    answer = clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
    )

    assert answer.status == 200 and answer.seconds < 3
    result = run.wait()
    assert result["state"].is_completed(), result["state"]
    assert result["value"] == f"changed, approved by {APPROVERS[0]}"
    decided = ApprovalStore().get(approval.id)
    assert decided is not None and decided.state is ApprovalState.APPROVED
    assert "actions" not in [b["type"] for b in message.blocks]  # buttons replaced
    assert f"Approved by <@{APPROVERS[0]}>" in str(message.blocks)
    thread = slack.thread(message.channel, message.ts)
    assert [m.text for m in thread] == ["cordoned worker-3", "drain of worker-3 done"]
    assert thread[-1].reply_broadcast  # the outcome also lands in the channel
