"""The gate end to end over the HTTP transport: real Prefect pause/resume, the real listener,
slack-sdk against the stand-in, clicks signed as Slack signs them."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run

from devtools.slack_standin import ClickSimulator, SlackStandin
from runbooks.approvals.config import SlackSettings
from runbooks.approvals.listener import Listener
from runbooks.approvals.record import ApprovalState
from runbooks.approvals.store import ApprovalStore
from tests.slack.conftest import (
    APPROVERS,
    GROUP_MEMBERS,
    OUTSIDER,
    REQUESTER,
    SIGNING_SECRET,
    approval_message,
    approval_of,
    policy,
    start_gated_run,
    wait_for,
)
from tests.slack.helpers import approval_trail, refusals, run_state

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def paused_run(slack: SlackStandin, **policy_changes: object):
    run = start_gated_run(policy(**policy_changes))
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")
    return run, message, approval


def test_approve_resumes_the_run_and_it_proceeds(
    slack: SlackStandin,
    clicks: ClickSimulator,
    http_listener: Listener,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    run, message, approval = paused_run(slack)

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
    actions = [(r.action, r.outcome, r.actor) for r in approval_trail(approval.id)]
    assert ("approval.request", "pending", REQUESTER) in actions
    assert ("approval.decide", "approved", APPROVERS[0]) in actions
    # no secret in logs or in the run's artifacts
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    seen = caplog.text + " ".join(str(a.data) for a in artifacts)
    assert f"Approval {approval.id}: approved" in seen
    for secret in (slack.bot_token, slack.app_token, SIGNING_SECRET):
        assert secret not in seen


def test_reject_stops_the_run_with_who_rejected(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run, message, _ = paused_run(slack)

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=GROUP_MEMBERS[0], action_id="runbook_reject"),
    )

    state = run.wait()["state"]
    assert state.is_failed()
    assert f"rejected by {GROUP_MEMBERS[0]}" in state.message
    assert f"Rejected by <@{GROUP_MEMBERS[0]}>" in str(message.blocks)
    assert slack.thread(message.channel, message.ts) == []  # it did nothing


def test_expiry_stops_the_run_with_the_reason_and_the_message_says_so(
    slack: SlackStandin, http_listener: Listener
):
    run = start_gated_run(policy(), ttl_seconds=3)
    message = approval_message(slack)
    approval = approval_of(message)

    state = run.wait()["state"]

    assert state.is_failed()
    assert "expired" in state.message and "nobody decided in time" in state.message
    expired = ApprovalStore().get(approval.id)
    assert expired is not None and expired.state is ApprovalState.EXPIRED
    assert "Expired at" in str(message.blocks)
    assert "actions" not in [b["type"] for b in message.blocks]
    assert [r.action for r in approval_trail(approval.id)].count("approval.expire") == 1


def test_without_a_listener_the_gate_expires_its_approval_itself(slack: SlackStandin):
    run = start_gated_run(policy(), ttl_seconds=2, expiry_grace=1)
    message = approval_message(slack)
    approval = approval_of(message)

    state = run.wait()["state"]

    assert state.is_failed()  # Prefect's own pause timeout: its message, our audit and Slack
    expired = ApprovalStore().get(approval.id)
    assert expired is not None and expired.state is ApprovalState.EXPIRED
    assert "Expired at" in str(message.blocks)
    assert [r.actor for r in approval_trail(approval.id) if r.action == "approval.expire"] == [
        "runbook"
    ]


def test_refused_clicks_leave_the_run_paused_and_are_audited(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run, message, approval = paused_run(slack, users=[*APPROVERS, REQUESTER])
    url = http_listener.http.url  # type: ignore[union-attr]
    approve = clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve")

    forged = clicks.http_click(url, approve, secret="someone-elses-secret")
    stale = clicks.http_click(url, approve, timestamp=int(time.time()) - 301)
    unknown = clicks.http_click(
        url,
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve", value="apr_madeup"),
    )
    outsider = clicks.http_click(
        url, clicks.payload(message, user=OUTSIDER, action_id="runbook_approve")
    )
    own = clicks.http_click(
        url, clicks.payload(message, user=REQUESTER, action_id="runbook_approve")
    )

    assert (forged.status, stale.status) == (401, 401)
    assert (unknown.status, outsider.status, own.status) == (200, 200, 200)  # acked, refused
    wait_for(lambda: len(refusals(approval.id)) >= 2, what="two audited refusals")
    # only verified clicks on this approval's message are filed under its run
    assert sorted(refusals(approval.id)) == [
        "not an approver for this runbook",
        "the requester cannot approve their own request",
    ]
    assert approval_trail("apr_madeup") == []  # counted by the listener, not audited
    assert http_listener.refusals.totals()["unknown_approval"] == 1
    assert http_listener.refusals.totals()["bad_signature"] == 1
    assert http_listener.refusals.totals()["stale_timestamp"] == 1
    assert {e.user for e in slack.ephemerals} == {OUTSIDER, REQUESTER, APPROVERS[0]}
    time.sleep(2)  # longer than the gate's poll interval
    assert run_state(approval.flow_run_id) == "PAUSED"
    assert ApprovalStore().get(approval.id).state is ApprovalState.PENDING  # type: ignore[union-attr]

    clicks.http_click(url, approve)  # the real approver still can
    assert run.wait()["state"].is_completed()


def test_double_click_decides_once(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run, message, approval = paused_run(slack)
    url = http_listener.http.url  # type: ignore[union-attr]
    click = clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve")

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: clicks.http_click(url, click), range(2)))

    assert [a.status for a in answers] == [200, 200]
    assert run.wait()["state"].is_completed()
    trail = approval_trail(approval.id)
    assert [r.outcome for r in trail if r.action == "approval.decide"] == ["approved"]
    assert any(r.startswith("already") for r in refusals(approval.id))


def test_two_person_rule_counts_distinct_people_across_two_listeners(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener, settings: SlackSettings
):
    run, message, approval = paused_run(slack, min_approvals=2)
    second = Listener(settings, http=("127.0.0.1", 0)).start()
    try:
        urls = [http_listener.http.url, second.http.url]  # type: ignore[union-attr]
        alice = clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve")
        bob = clicks.payload(message, user=APPROVERS[1], action_id="runbook_approve")

        # alice twice (one to each listener): still one person
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda u: clicks.http_click(u, alice), urls))
        wait_for(lambda: len(approval_trail(approval.id)) >= 3, what="both clicks audited")
        assert run_state(approval.flow_run_id) == "PAUSED"
        assert "1 of 2 approvals" in str(message.blocks)

        # alice again and bob at the same moment, on different listeners
        with ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda pair: clicks.http_click(*pair), zip(urls, [alice, bob], strict=True)
                )
            )
        assert run.wait()["state"].is_completed()
    finally:
        second.stop()
    decided = ApprovalStore().get(approval.id)
    assert decided is not None and decided.approvers == APPROVERS
    trail = approval_trail(approval.id)
    decides = [r.outcome for r in trail if r.action == "approval.decide"]
    assert decides == ["counted 1 of 2", "approved"]


def test_resume_from_elsewhere_with_made_up_input_does_not_pass(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run, message, approval = paused_run(slack)

    resume_flow_run(  # what the Prefect UI's Resume form (or anyone with API access) can send
        approval.flow_run_id,
        run_input={"approval_id": approval.id, "approved": True, "decided_by": APPROVERS[0]},
    )

    wait_for(
        lambda: "run resumed without a decision" in " ".join(refusals(approval.id)),
        what="the gate to notice",
    )
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the gate to wait again")
    assert ApprovalStore().get(approval.id).state is ApprovalState.PENDING  # type: ignore[union-attr]
    assert slack.thread(message.channel, message.ts) == []  # nothing was done

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[1], action_id="runbook_approve"),
    )
    assert run.wait()["value"] == f"changed, approved by {APPROVERS[1]}"


def test_click_before_the_run_has_paused_still_resumes_it(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    run = start_gated_run(policy())
    message = approval_message(slack)  # clicked as soon as it shows, before the pause

    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
    )

    assert run.wait()["state"].is_completed()
    wait_for(lambda: f"Approved by <@{APPROVERS[0]}>" in str(message.blocks), what="the view")


def test_rate_limits_and_slack_errors_when_posting_are_retried(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    slack.inject("chat.postMessage", status=429, retry_after=1, times=2)
    slack.inject("chat.postMessage", error="internal_error", times=1)

    run, message, _ = paused_run(slack)
    clicks.http_click(
        http_listener.http.url,  # type: ignore[union-attr]
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
    )

    assert run.wait()["state"].is_completed()
    answered = [c.answered for c in slack.calls_to("chat.postMessage")]
    assert answered[:4] == [429, 429, 200, 200]  # 429, 429, ok:false (HTTP 200), posted
    assert len(slack.top_level()) == 1  # one request message, not one per attempt


def test_slack_down_at_request_time_fails_closed(slack: SlackStandin):
    slack.inject("chat.postMessage", error="channel_not_found", times=10)

    run = start_gated_run(policy())
    state = run.wait()["state"]

    assert state.is_failed()
    assert "could not post the request to Slack: channel_not_found" in state.message
    assert slack.top_level() == []
