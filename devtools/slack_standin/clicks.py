"""The click simulator: what Slack sends when someone clicks a button on an approval message.

Builds ``block_actions`` payloads from the message as the stand-in holds it (so a click can
only press a button that is really there), then delivers them signed over HTTP or as a
Socket Mode envelope.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from slack_sdk.signature import SignatureVerifier

from devtools.slack_standin.server import APP_ID, TEAM_ID, Message, SlackStandin
from devtools.slack_standin.socket_mode import SocketModeStandin


class NoSuchButton(LookupError):
    """The message has no such button (already decided, or never had one)."""


@dataclass
class HttpAnswer:
    status: int
    body: str
    seconds: float


class ClickSimulator:
    def __init__(self, web: SlackStandin, signing_secret: str = "standin-signing-secret") -> None:
        self.web = web
        self.signing_secret = signing_secret

    def approval_message(self, approval_id: str) -> Message:
        for message in reversed(self.web.messages):
            if approval_id in json.dumps(message.blocks):
                return message
        raise LookupError(f"no message for approval {approval_id}")

    def payload(
        self,
        message: Message,
        *,
        user: str,
        action_id: str,
        team_id: str = TEAM_ID,
        app_id: str = APP_ID,
        value: str | None = None,
    ) -> dict[str, Any]:
        """The ``block_actions`` JSON for ``user`` pressing ``action_id`` on ``message``."""
        button, block_id = self._button(message, action_id)
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": team_id},
            "api_app_id": app_id,
            "token": "legacy-verification-token",
            "team": {"id": team_id, "domain": "standin"},
            "enterprise": None,
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "channel": {"id": message.channel, "name": "ops"},
            "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
            "trigger_id": f"{int(time.time())}.trigger",
            "response_url": f"{self.web.api_url}response_url/{message.ts}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value if value is not None else button.get("value"),
                    "text": button.get("text"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    @staticmethod
    def _button(message: Message, action_id: str) -> tuple[dict[str, Any], str]:
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    return element, str(block.get("block_id"))
        raise NoSuchButton(f"message {message.ts} has no {action_id} button")

    # --- transports ------------------------------------------------------------------------
    def signed_body(
        self, payload: dict[str, Any], *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = f"payload={quote(json.dumps(payload))}".encode()
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(
            timestamp=ts, body=body
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(signature),
        }
        return body, headers

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        started = time.monotonic()
        answer = httpx.post(url, content=body, headers=headers, timeout=10)
        return HttpAnswer(answer.status_code, answer.text, time.monotonic() - started)

    def http_click(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> HttpAnswer:
        """POST the click to the listener's ``/slack/events`` as Slack does, signed."""
        body, headers = self.signed_body(payload, timestamp=timestamp, secret=secret)
        return self.post(url, body, headers)

    def socket_click(self, socket: SocketModeStandin, payload: dict[str, Any]) -> float:
        """Deliver the click as a Socket Mode envelope; returns seconds until it was acked."""
        return socket.wait_ack(socket.send(payload))
