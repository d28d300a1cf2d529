"""Slack for the approval tests: the Web API stand-in (HTTP) and Socket Mode stand-in
(WebSocket) on 127.0.0.1, the real listener on either transport, and a click simulator.

slack-sdk, the listener and Prefect's pause/resume run unmodified against them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from prefect import flow

from devtools.slack_standin import ClickSimulator, SlackStandin
from devtools.slack_standin.server import Message
from devtools.slack_standin.socket_mode import SocketModeStandin
from runbooks.approvals.config import SlackSettings
from runbooks.approvals.listener import Listener
from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval
from runbooks.approvals.store import ApprovalStore
from tasks.approval_gate import approval_gate
from tasks.slack import post_outcome, post_progress

SIGNING_SECRET = "test-signing-secret-not-real"
CHANNEL = "C0OPS"
REQUESTER = "U0REQ"
APPROVERS = ["U0ALICE", "U0BOB"]
GROUP = "S0ONCALL"
GROUP_MEMBERS = ["U0CAROL", "U0DAVE"]
OUTSIDER = "U0MALLORY"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandin]:
    """The Web API stand-in with our workspace's people, and the env pointing at it."""
    with SlackStandin() as web:
        for user in [REQUESTER, *APPROVERS, OUTSIDER]:
            web.add_user(user)
        web.add_usergroup(GROUP, GROUP_MEMBERS)
        monkeypatch.setenv("SLACK_BOT_TOKEN", web.bot_token)
        monkeypatch.setenv("SLACK_APP_TOKEN", web.app_token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        monkeypatch.setenv("RUNBOOK_SLACK_CHANNEL", CHANNEL)
        monkeypatch.setenv("RUNBOOK_SLACK_API_URL", web.api_url)
        yield web


@pytest.fixture
def settings(slack: SlackStandin) -> SlackSettings:
    return SlackSettings()


@pytest.fixture
def clicks(slack: SlackStandin) -> ClickSimulator:
    return ClickSimulator(slack, SIGNING_SECRET)


@pytest.fixture
def http_listener(settings: SlackSettings) -> Iterator[Listener]:
    listener = Listener(settings, http=("127.0.0.1", 0), sweep_seconds=0.5).start()
    yield listener
    listener.stop()


@pytest.fixture
def socket_standin(slack: SlackStandin) -> Iterator[SocketModeStandin]:
    with SocketModeStandin(slack) as socket:
        yield socket


@pytest.fixture
def socket_listener(
    settings: SlackSettings, socket_standin: SocketModeStandin
) -> Iterator[Listener]:
    listener = Listener(settings, sweep_seconds=0.5).start()
    socket_standin.wait_connected()
    yield listener
    listener.stop()


@dataclass
class GatedRun:
    """A flow run waiting at the gate, run in a thread as a worker would run it."""

    thread: threading.Thread
    result: dict[str, Any] = field(default_factory=dict)

    def wait(self, timeout: float = 60) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow run did not finish"
        return self.result


def policy(**changes: Any) -> ApproverPolicy:
    base: dict[str, Any] = {"users": APPROVERS, "usergroups": [GROUP]}
    return ApproverPolicy(**(base | changes))


PLAN = "| node | pods to evict |\n|---|---|\n| worker-3 | 14 |"


@flow(name="demo-gated-change")
def gated_change(
    approver_policy: ApproverPolicy, ttl_seconds: float, plan: str = PLAN, expiry_grace: float = 5
) -> str:
    """A runbook shaped like the real ones: ask, then act, reporting in the thread."""
    approved = approval_gate(
        "drain worker-3 (demo)",
        plan,
        approver_policy,
        timeout=timedelta(seconds=ttl_seconds),
        requester=REQUESTER,
        poll_interval=1,
        expiry_grace=timedelta(seconds=expiry_grace),
    )
    post_progress(approved.thread, "cordoned worker-3")
    post_outcome(approved.thread, "drain of worker-3 done")
    return f"changed, approved by {','.join(approved.approvers)}"


def start_gated_run(
    approver_policy: ApproverPolicy, ttl_seconds: float = 60, expiry_grace: float = 5
) -> GatedRun:
    run = GatedRun(thread=threading.Thread(daemon=True, target=lambda: None))

    def target() -> None:
        state = gated_change(
            approver_policy, ttl_seconds, expiry_grace=expiry_grace, return_state=True
        )
        run.result["state"] = state
        run.result["value"] = state.result(raise_on_failure=False)

    run.thread = threading.Thread(target=target, daemon=True)
    run.thread.start()
    return run


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def approval_message(slack: SlackStandin) -> Message:
    return wait_for(
        lambda: next((m for m in slack.top_level(CHANNEL) if "approval:" in str(m.blocks)), None),
        what="the approval message in Slack",
    )


def approval_of(message: Message) -> Approval:
    block = next(b for b in message.blocks if b.get("type") == "actions")
    approval = ApprovalStore().get(str(block["block_id"]).removeprefix("approval:"))
    assert approval is not None
    return approval
