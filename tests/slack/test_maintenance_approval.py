"""Rolling node maintenance under the operator's approval policy, end to end: the real local
control plane, the real Prefect engine, the real listener, slack-sdk against the Slack stand-in.

The policy comes from the operator configuration (RUNBOOK_CONFIG), not from the run: these runs
pass no approval parameter and are gated anyway, because the policy says live runs ask."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from devtools.slack_standin import ClickSimulator, SlackStandin
from flows.rolling_maintenance import rolling_node_maintenance
from runbooks.approvals.listener import Listener
from runbooks.audit import RecordFilter, get_store
from runbooks.identity import os_user, started_from_cli
from tests.cluster.test_maintenance_helpers import node_state, params
from tests.slack.conftest import APPROVERS, approval_message, approval_of, wait_for
from tests.slack.helpers import refusals, run_state

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ALICE, BOB = APPROVERS  # Bob is the person at this terminal, under another name in Slack


@pytest.fixture(autouse=True)
def operator_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's configuration: who approves maintenance, and who is who."""
    path = tmp_path / "operator.yaml"
    path.write_text(
        "approvals:\n"
        "  rolling-node-maintenance:\n"
        f"    users: [{ALICE}, {BOB}]\n"
        "    timeout: 120s\n"
        "identities:\n"
        f"  {ALICE}: [os-user:alice-not-here]\n"
        f"  {BOB}: [os-user:{os_user()}]\n"
    )
    monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
    return path


def start(cluster: Any, group: Any, *, from_cli: bool = True) -> tuple[threading.Thread, dict]:
    """The run as `runbook maintain` starts it (the person at this terminal is its requester),
    or as a worker runs one started through the Prefect API (nobody known started it)."""
    out: dict[str, Any] = {}

    def target() -> None:
        if from_cli:
            with started_from_cli():
                out["state"] = rolling_node_maintenance(params(cluster, group), return_state=True)
        else:
            out["state"] = rolling_node_maintenance(params(cluster, group), return_state=True)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def click(clicks: ClickSimulator, listener: Listener, message: Any, user: str, action: str) -> None:
    clicks.http_click(
        listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=user, action_id=f"runbook_{action}"),
    )


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
    assert f"os-user:{os_user()}" in (approval.policy.requester_identities or [])

    click(clicks, http_listener, message, ALICE, "approve")
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

    click(clicks, http_listener, message, BOB, "reject")  # the requester may withdraw
    thread.join(120)

    state = out["state"]
    assert state.is_failed()
    assert f"rejected by {BOB}" in state.message
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}


def test_the_requester_cannot_approve_under_their_slack_identity(
    cluster, node_group, slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    """Bob started the run from his terminal (OS user); in Slack he is U0BOB, which the
    operator maps to that OS user: his Approve is refused and nothing is touched."""
    group = node_group(1)
    thread, out = start(cluster, group)
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    click(clicks, http_listener, message, BOB, "approve")
    wait_for(lambda: refusals(approval.id), what="the refusal in the audit trail")

    assert refusals(approval.id) == ["the requester cannot approve their own request"]
    assert run_state(approval.flow_run_id) == "PAUSED"
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    click(clicks, http_listener, message, ALICE, "reject")  # end the run
    thread.join(120)
    assert out["state"].is_failed()


def test_a_run_nobody_known_started_cannot_be_approved(
    cluster, node_group, slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    """Started through the Prefect API with no user (Prefect OSS): anyone could be the
    requester, so even an approver who is not is refused; the run stays untouched."""
    group = node_group(1)
    thread, out = start(cluster, group, from_cli=False)
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")
    assert approval.requester == "unidentified starter"

    click(clicks, http_listener, message, ALICE, "approve")
    wait_for(lambda: refusals(approval.id), what="the refusal in the audit trail")

    [reason] = refusals(approval.id)
    assert "could not be identified" in reason
    assert run_state(approval.flow_run_id) == "PAUSED"
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    click(clicks, http_listener, message, ALICE, "reject")
    thread.join(120)
    assert out["state"].is_failed()
