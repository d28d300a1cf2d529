"""The Socket Mode stand-in: a WebSocket server speaking Slack's Socket Mode protocol.

slack-sdk's ``SocketModeClient`` gets its URL from ``apps.connections.open`` on the Web API
stand-in, receives ``hello``, then envelopes; it acknowledges each with ``{"envelope_id"}``.
As in Slack, each envelope goes to one open connection.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from devtools.slack_standin.server import APP_ID, SlackStandin


class SocketModeStandin:
    """Attach to a Web API stand-in; ``send`` delivers an envelope, ``wait_ack`` times it."""

    def __init__(self, web: SlackStandin) -> None:
        self.web = web
        self.connections: list[ServerConnection] = []
        self.acks: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Condition()
        self._next = itertools.count()
        self._server: Server | None = None

    def start(self) -> SocketModeStandin:
        self._server = serve(self._handle, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        port = self._server.socket.getsockname()[1]
        self.web.socket_url = f"ws://127.0.0.1:{port}/link/?ticket={uuid.uuid4()}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.web.socket_url = None

    def __enter__(self) -> SocketModeStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.connections) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.connections)} of {count} Socket Mode clients connected"
                )

    def send(self, payload: dict[str, Any], *, kind: str = "interactive", retry: int = 0) -> str:
        """Deliver one envelope to one connection (round robin); returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "interactive",
            "retry_attempt": retry,
            "retry_reason": "timeout" if retry else "",
        }
        with self._lock:
            if not self.connections:
                raise RuntimeError("no Socket Mode client is connected")
            conn = self.connections[next(self._next) % len(self.connections)]
            self.sent[envelope_id] = time.monotonic()
        conn.send(json.dumps(envelope))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> float:
        """Seconds from sending the envelope to its acknowledgement; TimeoutError if none."""
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} not acknowledged within {timeout} s")
            return self.acks[envelope_id] - self.sent[envelope_id]

    def disconnect_all(self) -> None:
        """Ask clients to reconnect, as Slack does when it refreshes a connection."""
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            conn.send(json.dumps({"type": "disconnect", "reason": "refresh_requested"}))

    def _handle(self, conn: ServerConnection) -> None:
        conn.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self.connections) + 1,
                    "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        with self._lock:
            self.connections.append(conn)
            self._lock.notify_all()
        try:
            for raw in conn:
                message = json.loads(raw)
                envelope_id = message.get("envelope_id")
                if envelope_id:
                    with self._lock:
                        self.acks.setdefault(envelope_id, time.monotonic())
                        self.responses[envelope_id] = message
                        self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self.connections.remove(conn)
                self._lock.notify_all()
