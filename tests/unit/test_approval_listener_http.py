"""The HTTP endpoint on its own: 401 for anything not signed by Slack, and the ack comes
before the work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from devtools.slack_standin import ClickSimulator, SlackStandin
from runbooks.approvals.listener_http import HttpListener

SECRET = "test-signing-secret"
CLICK = {"type": "block_actions", "actions": [{"action_id": "runbook_approve", "value": "apr_1"}]}


@pytest.fixture
def received() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def endpoint(received: list[dict[str, Any]]) -> Iterator[HttpListener]:
    done = threading.Event()

    def slow_work(payload: dict[str, Any]) -> None:
        time.sleep(4)  # longer than Slack's 3 s: the ack must not wait for it
        received.append(payload)
        done.set()

    listener = HttpListener(SECRET, slow_work).start()
    yield listener
    listener.stop()


@pytest.fixture
def clicks() -> ClickSimulator:
    return ClickSimulator(SlackStandin(), SECRET)


def test_a_signed_click_is_acknowledged_before_the_work_is_done(endpoint, clicks, received):
    answer = clicks.http_click(endpoint.url, CLICK)

    assert (answer.status, answer.body) == (200, "")
    assert answer.seconds < 1
    assert received == []


@pytest.mark.parametrize(
    ("skew", "secret", "reason"),
    [
        (None, "someone-elses-secret", "invalid signature"),
        (-400, None, "stale request timestamp"),
        (+400, None, "stale request timestamp"),
    ],
)
def test_forged_or_stale_requests_get_401(endpoint, clicks, received, skew, secret, reason):
    # The timestamp is taken when the test runs, not at collection: a long session would
    # otherwise bring "400 s in the future" inside the 5-minute window.
    timestamp = None if skew is None else int(time.time()) + skew
    answer = clicks.http_click(endpoint.url, CLICK, timestamp=timestamp, secret=secret)

    assert answer.status == 401
    assert answer.body.startswith(reason)
    assert secret is None or secret not in answer.body


def test_unsigned_or_garbled_requests_get_401(endpoint):
    unsigned = httpx.post(endpoint.url, content=b"payload=%7B%7D")
    garbled = httpx.post(
        endpoint.url,
        content=b"payload=%7B%7D",
        headers={"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
    )
    assert (unsigned.status_code, garbled.status_code) == (401, 401)


def test_only_slack_events_path_is_served(endpoint):
    base = endpoint.url.removesuffix("/slack/events")
    assert httpx.post(base + "/other", content=b"").status_code == 404
    assert httpx.get(base + "/healthz").text == "ok"


def test_url_verification_handshake_answers_the_challenge(endpoint):
    body = b'{"type": "url_verification", "challenge": "c123"}'
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }

    answer = httpx.post(endpoint.url, content=body, headers=headers)

    assert answer.json() == {"challenge": "c123"}
