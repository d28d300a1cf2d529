"""The Socket Mode transport (default): an outbound WebSocket, no inbound port.

slack-sdk's ``SocketModeClient`` gets its URL from ``apps.connections.open`` (app-level token)
and reconnects by itself. Each envelope is acknowledged first, then handed on.

The client is slack-sdk's websocket-client flavour, not its built-in one: the built-in frame
reader hands on a message cut short when its frame arrives in two TCP reads (seen in CI under
load: "Failed to process a message: Unterminated string"), and the click is lost.
websocket-client is already installed as a dependency of the kubernetes client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.socket_mode.websocket_client import SocketModeClient

log = logging.getLogger("runbooks.approvals")


class SocketListener:
    def __init__(
        self, app_token: str, web: WebClient, on_payload: Callable[[dict[str, Any]], None]
    ) -> None:
        self._on_payload = on_payload
        self.last_message_at: float | None = None
        self.client = SocketModeClient(app_token=app_token, web_client=web, ping_interval=5)
        self.client.socket_mode_request_listeners.append(self._on_request)

    def start(self) -> SocketListener:
        self.client.connect()
        return self

    def stop(self) -> None:
        self.client.close()

    @property
    def connected(self) -> bool:
        """For the health check: a dead socket means silently no approvals."""
        return self.client.is_connected()

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        self.last_message_at = time.time()
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "interactive":
            self._on_payload(request.payload)
