"""The gate end to end over Socket Mode (the default transport): slack-sdk's SocketModeClient
connects through apps.connections.open on the stand-in to a local Socket Mode server."""

from __future__ import annotations

import time

import pytest

from devtools.slack_standin import ClickSimulator, SlackStandin
from devtools.slack_standin.socket_mode import SocketModeStandin
from runbooks.approvals.config import SlackSettings
from runbooks.approvals.listener import Listener
from runbooks.approvals.record import ApprovalState
from runbooks.approvals.store import ApprovalStore
from tests.slack.conftest import (
    APPROVERS,
    GROUP_MEMBERS,
    OUTSIDER,
    approval_message,
    approval_of,
    policy,
    start_gated_run,
    wait_for,
)
from tests.slack.helpers import approval_trail, refusals, run_state

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_approve_over_socket_mode_is_acked_within_3s_and_resumes_the_run(
    slack: SlackStandin,
    clicks: ClickSimulator,
    socket_standin: SocketModeStandin,
    socket_listener: Listener,
):
    run = start_gated_run(policy())
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    outsider_ack = clicks.socket_click(
        socket_standin, clicks.payload(message, user=OUTSIDER, action_id="runbook_approve")
    )
    group_ack = clicks.socket_click(
        socket_standin,
        clicks.payload(message, user=GROUP_MEMBERS[1], action_id="runbook_approve"),
    )

    assert outsider_ack < 3 and group_ack < 3
    result = run.wait()
    assert result["value"] == f"changed, approved by {GROUP_MEMBERS[1]}"
    assert refusals(approval.id) == ["not an approver for this runbook"]
    decide = next(r for r in approval_trail(approval.id) if r.action == "approval.decide")
    assert decide.details["transport"] == "socket"


def test_two_socket_connections_decide_a_duplicate_click_once(
    slack: SlackStandin,
    clicks: ClickSimulator,
    socket_standin: SocketModeStandin,
    socket_listener: Listener,
    settings: SlackSettings,
):
    second = Listener(settings).start()  # a second replica: envelopes go to one or the other
    try:
        socket_standin.wait_connected(2)
        run = start_gated_run(policy())
        message = approval_message(slack)
        approval = approval_of(message)
        wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")
        click = clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve")

        envelopes = [socket_standin.send(click) for _ in range(2)]  # one per connection
        for envelope in envelopes:
            socket_standin.wait_ack(envelope)

        assert run.wait()["state"].is_completed()
    finally:
        second.stop()
    decides = [r for r in approval_trail(approval.id) if r.action == "approval.decide"]
    assert len(decides) == 1
    wait_for(lambda: refusals(approval.id), what="the duplicate to be refused")
    assert refusals(approval.id)[0].startswith("already")
    assert ApprovalStore().get(approval.id).state is ApprovalState.APPROVED  # type: ignore[union-attr]


def test_socket_mode_listener_reconnects_when_slack_asks(
    slack: SlackStandin,
    clicks: ClickSimulator,
    socket_standin: SocketModeStandin,
    socket_listener: Listener,
):
    opened = len(slack.calls_to("apps.connections.open"))

    socket_standin.disconnect_all()

    wait_for(
        lambda: (
            len(slack.calls_to("apps.connections.open")) > opened and socket_standin.connections
        ),
        what="a new connection",
    )
    time.sleep(0.5)
    run = start_gated_run(policy())
    message = approval_message(slack)
    clicks.socket_click(
        socket_standin, clicks.payload(message, user=APPROVERS[1], action_id="runbook_approve")
    )
    assert run.wait()["state"].is_completed()
