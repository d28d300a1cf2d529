"""Rolling node maintenance with its approval option, end to end: the real local control plane,
the real Prefect engine, the real listener, slack-sdk against the Slack stand-in."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flows.rolling_maintenance import rolling_node_maintenance
from runbooks.approvals.listener import Listener
from runbooks.approvals.policy import ApprovalPolicy
from runbooks.audit import RecordFilter, get_store
from runbooks.slack_standin import ClickSimulator, SlackStandin
from tests.cluster.test_maintenance_helpers import node_state, params
from tests.slack.conftest import APPROVERS, approval_message, approval_of, wait_for
from tests.slack.helpers import run_state

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def start(cluster: Any, group: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    policy = ApprovalPolicy.model_validate({"users": APPROVERS, "timeout": 120})

    def target() -> None:
        out["state"] = rolling_node_maintenance(
            params(cluster, group, approval=policy), return_state=True
        )

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_maintenance_waits_for_approval_of_its_plan_then_reports_in_the_thread(
    cluster, node_group, slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    group = node_group(2)
    thread, out = start(cluster, group)
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    assert all(n in message.blocks[2]["text"]["text"] for n in group.names)  # the plan is shown
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
    )
    thread.join(180)

    report = out["state"].result()
    assert report.status == "succeeded", report.message
    replies = slack.thread(message.channel, message.ts)
    assert any(r.text.startswith("batch 1:") for r in replies)
    assert replies[-1].reply_broadcast and replies[-1].text.startswith("succeeded")
    started = get_store().records(RecordFilter(action="run.start", flow_run_id=report.run_id))
    assert [r.details["plan_digest"] for r in started] == [approval.plan_digest]
    assert [r.approval_id for r in started] == [approval.id]  # who approved this run, findable


def test_rejected_maintenance_touches_no_node_and_says_who_rejected(
    cluster, node_group, slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    group = node_group(1)
    thread, out = start(cluster, group)
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[1], action_id="runbook_reject"),
    )
    thread.join(120)

    state = out["state"]
    assert state.is_failed()
    assert f"rejected by {APPROVERS[1]}" in state.message
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
