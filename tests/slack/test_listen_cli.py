"""`runbook listen` as an operator runs it: its own process, configured from the environment,
resuming a run that waits in another process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.slack_standin import ClickSimulator, SlackStandin
from devtools.slack_standin.socket_mode import SocketModeStandin
from tests.slack.conftest import (
    APPROVERS,
    SIGNING_SECRET,
    approval_message,
    approval_of,
    policy,
    start_gated_run,
    wait_for,
)
from tests.slack.helpers import refusals, run_state

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listen(slack: SlackStandin) -> Iterator[callable]:  # type: ignore[valid-type]
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [RUNBOOK, "listen", *args],
            env=dict(os.environ),  # the slack fixture's SLACK_* and the harness's PREFECT_API_URL
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


def test_listen_over_http_resumes_a_run_in_another_process(
    slack: SlackStandin, clicks: ClickSimulator, listen
):
    port = free_port()
    process = listen("--http", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/slack/events"
    wait_for(lambda: _healthy(port), what="the listener to serve")
    run = start_gated_run(policy())
    message = approval_message(slack)
    approval = approval_of(message)
    wait_for(lambda: run_state(approval.flow_run_id) == "PAUSED", what="the run to pause")

    forged = clicks.http_click(
        url,
        clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve"),
        secret="wrong",
    )
    approved = clicks.http_click(
        url, clicks.payload(message, user=APPROVERS[0], action_id="runbook_approve")
    )

    assert (forged.status, approved.status) == (401, 200)
    assert run.wait()["state"].is_completed()
    assert refusals(approval.id) == []  # not signed by Slack: counted, never audited
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'runbook_listener_refused_total{reason="bad_signature"} 1' in metrics
    code, stderr = stop(process)
    assert code == 0, stderr
    assert "listening for approval clicks on http://127.0.0.1" in stderr
    assert "listener stopped; refused 1 request (bad_signature 1)" in stderr
    for secret in (slack.bot_token, SIGNING_SECRET):
        assert secret not in stderr


def test_listen_over_socket_mode_by_default(
    slack: SlackStandin, clicks: ClickSimulator, socket_standin: SocketModeStandin, listen
):
    process = listen()
    socket_standin.wait_connected(timeout=30)
    run = start_gated_run(policy())
    message = approval_message(slack)

    ack = clicks.socket_click(
        socket_standin, clicks.payload(message, user=APPROVERS[1], action_id="runbook_approve")
    )

    assert ack < 3
    assert run.wait()["state"].is_completed()
    code, stderr = stop(process)
    assert code == 0, stderr
    assert slack.app_token not in stderr


def test_listen_without_tokens_says_what_is_missing(monkeypatch: pytest.MonkeyPatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    result = subprocess.run(
        [RUNBOOK, "listen", "--http", "127.0.0.1:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: missing Slack settings: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET "
        "(set them in the environment or as Prefect Secret blocks, see docs/slack-app.md)"
    )


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text == "ok"
    except httpx.HTTPError:
        return False
