"""``wait="suspend"``: the flow process exits while waiting and the flow re-runs from the top
after approval, finding its approval again instead of asking twice. A served deployment,
the real Prefect runner, the real listener."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from devtools.slack_standin import ClickSimulator, SlackStandin
from runbooks.approvals.listener import Listener
from tests.slack.conftest import APPROVERS, approval_message, approval_of, policy, wait_for
from tests.slack.suspended_flow import DEPLOYMENT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def state_of(run_id: UUID) -> tuple[str, str | None]:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    assert state is not None
    return state.type.value, state.name


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the served flow by its PID: Ctrl-C first; Prefect's runner can take longer than 15 s
    to wind down on a loaded machine (seen in CI), so then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        server.send_signal(sig)
        try:
            server.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def test_a_suspended_gate_releases_the_process_and_resumes_once_approved(
    slack: SlackStandin, clicks: ClickSimulator, http_listener: Listener
):
    env = dict(os.environ) | {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.slack.suspended_flow"], env=env, cwd=os.getcwd()
    )
    try:
        wait_for(lambda: _deployed(), timeout=60, what="the deployment")
        run = run_deployment(
            DEPLOYMENT, parameters={"approver_policy": policy().model_dump()}, timeout=0
        )
        assert isinstance(run, FlowRun), "run_deployment called from sync code returns the run"
        message = approval_message(slack)
        approval = approval_of(message)
        wait_for(lambda: state_of(run.id) == ("PAUSED", "Suspended"), what="the suspension")

        clicks.http_click(
            http_listener.http.url,  # type: ignore[union-attr]
            clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
        )

        wait_for(lambda: state_of(run.id)[0] == "COMPLETED", timeout=60, what="the re-run")
    finally:
        _stop(server)
    requests = [m for m in slack.top_level() if approval.id in str(m.blocks)]
    assert len(requests) == 1  # asked once, although the flow body ran twice
    assert [m.text for m in slack.thread(message.channel, message.ts)] == ["certificates rotated"]
    with get_client(sync_client=True) as client:
        history = [s.name for s in client.read_flow_run_states(run.id)]
    assert "Suspended" in history and history[-1] == "Completed"
    assert history.count("Running") == 2  # the flow body ran again after the resume


def _deployed() -> bool:
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(DEPLOYMENT)
        return True
    except Exception:
        return False
