"""Only requests Slack signed, for an approval's own message, reach the audit trail.

Everything else (unsigned, forged, stale, malformed, for an approval that does not exist or
from another message) is refused cleanly, counted on ``GET /metrics`` and logged at most once
per interval: a flood of junk must not grow the hash-chained trail or crash the handler.
The real listener over HTTP on 127.0.0.1, slack-sdk against the Slack stand-in.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from devtools.slack_standin import ClickSimulator, SlackStandin
from devtools.slack_standin.server import Message
from devtools.slack_standin.socket_mode import SocketModeStandin
from runbooks.approvals.blocks import render
from runbooks.approvals.config import SlackSettings
from runbooks.approvals.listener import Listener
from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval, new_approval_id
from runbooks.approvals.store import ApprovalStore
from runbooks.audit import RecordFilter, get_store

SECRET = "test-signing-secret-refusals"


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    with SlackStandin() as web:
        for user in ("U0REQ", "U0ALICE"):
            web.add_user(user)
        yield web


@pytest.fixture
def listener(slack: SlackStandin) -> Iterator[Listener]:
    settings = SlackSettings.model_validate(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "RUNBOOK_SLACK_API_URL": slack.api_url,
        }
    )
    started = Listener(settings, http=("127.0.0.1", 0), sweep_seconds=3600).start()
    yield started
    started.stop()


@pytest.fixture
def clicks(slack: SlackStandin) -> ClickSimulator:
    return ClickSimulator(slack, SECRET)


@pytest.fixture
def approval(slack: SlackStandin) -> tuple[Approval, Message]:
    """A real pending approval, and its message as the gate posted it."""
    now = datetime.now(UTC)
    approval = Approval(
        id=new_approval_id(),
        flow_run_id=str(uuid.uuid4()),
        runbook="demo",
        title="drain worker-3",
        plan="plan",
        plan_digest="sha256:00",
        requester="U0REQ",
        policy=ApproverPolicy.model_validate({"users": ["U0ALICE"]}),
        requested_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    store = ApprovalStore()
    store.create(approval)
    store.set_message(approval.id, channel="C0OPS", ts="1.000001")
    text, blocks = render(approval)
    message = Message("C0OPS", "1.000001", text, [b.to_dict() for b in blocks])
    slack.messages.append(message)
    return approval, message


def url(listener: Listener) -> str:
    assert listener.http is not None
    return listener.http.url


def metrics(listener: Listener) -> str:
    return httpx.get(url(listener).replace("/slack/events", "/metrics")).text


def refused_count(listener: Listener, reason: str) -> int:
    prefix = f'runbook_listener_refused_total{{reason="{reason}"}} '
    line = next((x for x in metrics(listener).splitlines() if x.startswith(prefix)), None)
    return int(line.removeprefix(prefix)) if line else 0


def audit_rows() -> int:
    return len(get_store().records())


def rows_under(flow_run_id: str) -> list[str]:
    records = get_store().records(RecordFilter(flow_run_id=flow_run_id))
    return [f"{r.action} {r.details.get('reason')}" for r in records]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_unsigned_posts_add_no_audit_rows_and_are_counted(listener, clicks, approval):
    _, message = approval
    click = clicks.payload(message, user="U0ALICE", action_id="runbook_approve")
    body = f"payload={quote(json.dumps(click))}".encode()
    before = audit_rows()

    with httpx.Client() as client:
        statuses = {client.post(url(listener), content=body).status_code for _ in range(500)}

    assert statuses == {401}
    time.sleep(0.5)  # anything still on its way to the trail would land by now
    assert audit_rows() == before
    assert refused_count(listener, "unsigned") == 500


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "someone-elses-secret"}, "bad_signature"),
        ({"timestamp": -400}, "stale_timestamp"),
    ],
)
def test_forged_or_stale_clicks_on_a_real_approval_file_nothing_under_its_run(
    listener, clicks, approval, change, reason
):
    real, message = approval
    click = clicks.payload(message, user="U0ALICE", action_id="runbook_approve")
    if "timestamp" in change:
        change = {"timestamp": int(time.time()) + change["timestamp"]}

    answer = clicks.http_click(url(listener), click, **change)

    assert answer.status == 401
    time.sleep(0.2)
    assert rows_under(real.flow_run_id) == []
    assert refused_count(listener, reason) == 1


def test_signed_click_with_a_made_up_approval_id_is_refused_counted_not_audited(
    listener, clicks, approval
):
    _, message = approval
    before = audit_rows()
    click = clicks.payload(
        message, user="U0ALICE", action_id="runbook_approve", value="apr_0000000000madeup"
    )

    assert clicks.http_click(url(listener), click).status == 200  # Slack signed it: acked

    wait_for(lambda: refused_count(listener, "unknown_approval") == 1, "the refusal count")
    assert audit_rows() == before
    assert [e.text for e in clicks.web.ephemerals] == ["Not recorded: unknown approval."]


def test_signed_click_naming_a_real_approval_from_another_message_is_not_filed_under_it(
    listener, clicks, approval, slack
):
    real, _ = approval
    other = Message("C0OPS", "2.000002", "a copy", [b.to_dict() for b in render(real)[1]])
    slack.messages.append(other)
    click = clicks.payload(other, user="U0ALICE", action_id="runbook_approve")

    assert clicks.http_click(url(listener), click).status == 200

    wait_for(lambda: refused_count(listener, "wrong_message") == 1, "the refusal count")
    assert rows_under(real.flow_run_id) == []
    assert ApprovalStore().get(real.id).state.value == "pending"  # type: ignore[union-attr]


def _valid(click: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(click))


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("actions not a list", lambda p: p | {"actions": {"action_id": "runbook_approve"}}),
    ("actions empty", lambda p: p | {"actions": []}),
    ("an action not an object", lambda p: p | {"actions": ["runbook_approve"]}),
    ("action value a number", lambda p: p | {"actions": [p["actions"][0] | {"value": 7}]}),
    ("user a string", lambda p: p | {"user": "U0ALICE"}),
    ("user id of 300 characters", lambda p: p | {"user": {"id": "U" * 300}}),
    ("user id empty", lambda p: p | {"user": {"id": ""}}),
    ("user missing", lambda p: {k: v for k, v in p.items() if k != "user"}),
    ("actions missing", lambda p: {k: v for k, v in p.items() if k != "actions"}),
    ("type missing", lambda p: {k: v for k, v in p.items() if k != "type"}),
    ("team a list", lambda p: p | {"team": ["T0STANDIN"]}),
    ("team id a number", lambda p: p | {"team": {"id": 5}}),
    ("container a string", lambda p: p | {"container": "C0OPS"}),
    ("api_app_id an object", lambda p: p | {"api_app_id": {"id": "A0"}}),
    ("payload a list", lambda p: [p]),
    ("payload a string", lambda p: "block_actions"),
    ("payload null", lambda p: None),
]


@pytest.mark.parametrize(("shape", "mangle"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_signed_payloads_get_a_clean_400(
    listener, clicks, approval, caplog, shape, mangle
):
    caplog.set_level(logging.INFO)
    real, message = approval
    payload = mangle(_valid(clicks.payload(message, user="U0ALICE", action_id="runbook_approve")))
    before = audit_rows()

    answer = clicks.http_click(url(listener), payload)

    assert answer.status == 400, shape
    assert answer.body.startswith("malformed payload") and "\n" not in answer.body
    assert refused_count(listener, "malformed_payload") == 1
    time.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert audit_rows() == before
    assert ApprovalStore().get(real.id).state.value == "pending"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"payload=not-json", "application/x-www-form-urlencoded"),
        (b"nothing=here", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"payload=%FF%FE", "application/x-www-form-urlencoded"),
    ],
)
def test_signed_bodies_that_are_not_a_json_payload_get_a_clean_400(
    listener, clicks, body, content_type
):
    ts = str(int(time.time()))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(
            SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        ),
    }

    answer = clicks.post(url(listener), body, headers)

    assert answer.status == 400
    assert answer.body.startswith("malformed payload") and "\n" not in answer.body


def test_refusals_are_logged_at_most_once_per_interval_with_a_count(listener, caplog):
    caplog.set_level(logging.INFO, logger="runbooks.approvals")

    with httpx.Client() as client:
        for _ in range(50):
            client.post(url(listener), content=b"payload=%7B%7D")

    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "unsigned" in lines[0]


def test_signed_click_for_another_app_is_refused_counted_not_audited(listener, clicks, approval):
    real, message = approval
    click = clicks.payload(message, user="U0ALICE", action_id="runbook_approve", app_id="A0OTHER")

    assert clicks.http_click(url(listener), click).status == 200

    wait_for(lambda: refused_count(listener, "foreign_app") == 1, "the refusal count")
    assert rows_under(real.flow_run_id) == []


@pytest.fixture
def socket_listener(slack: SlackStandin) -> Iterator[tuple[Listener, SocketModeStandin]]:
    settings = SlackSettings.model_validate(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "RUNBOOK_SLACK_API_URL": slack.api_url,
        }
    )
    with SocketModeStandin(slack) as socket:
        started = Listener(settings, sweep_seconds=3600).start()
        socket.wait_connected()
        yield started, socket
        started.stop()


def test_malformed_payloads_over_socket_mode_are_acked_counted_and_never_raise(
    socket_listener, clicks, approval, caplog
):
    caplog.set_level(logging.INFO)
    listener, socket = socket_listener
    _, message = approval
    valid = clicks.payload(message, user="U0ALICE", action_id="runbook_approve")
    before = audit_rows()

    # slack-sdk itself drops envelopes whose payload is a list or null (it logs "Unsupported
    # payload data type" and never acks); every other shape reaches the listener.
    shapes = [m for shape, m in MALFORMED if shape not in ("payload a list", "payload null")]
    for mangle in shapes:
        socket.wait_ack(socket.send(mangle(_valid(valid))))

    wait_for(
        lambda: listener.refusals.totals()["malformed_payload"] == len(shapes),
        "every malformed envelope counted",
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert audit_rows() == before
