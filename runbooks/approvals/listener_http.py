"""The HTTP transport: Slack's interactivity requests at ``POST /slack/events``.

The signature is checked on the raw bytes before anything is parsed; stale or forged requests
get 401. A verified click is acknowledged at once (Slack allows 3 s) and decided afterwards.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock

from runbooks.approvals.signature import verification_failure

log = logging.getLogger("runbooks.approvals")

PATH = "/slack/events"
_MAX_BODY = 1 << 20


class _Server(ThreadingHTTPServer):
    # The stdlib default backlog (5) reset connections in a burst of 50 concurrent clicks.
    request_queue_size = 128
    daemon_threads = True


class HttpListener:
    """Serves ``/slack/events`` (and ``/healthz``); ``on_payload`` runs after the ack."""

    def __init__(
        self,
        signing_secret: str,
        on_payload: Callable[[dict[str, Any]], None],
        *,
        on_unverified: Callable[[str, dict[str, Any] | None], None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self._secret = signing_secret
        self._on_payload = on_payload
        self._on_unverified = on_unverified
        self._clock = clock
        listener = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                listener._post(self)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    listener._reply(self, 200, b"ok")
                else:
                    listener._reply(self, 404, b"not found")

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are audited; access logs would only repeat them

        self._server = _Server((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}{PATH}"

    def start(self) -> HttpListener:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain",
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
        request.wfile.flush()

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.split("?")[0] != PATH:
            self._reply(request, 404, b"not found")
            return
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._reply(request, 413, b"missing, malformed or too large Content-Length")
            return
        raw = request.rfile.read(length)
        failure = verification_failure(self._secret, raw, dict(request.headers), self._clock)
        if failure:
            log.warning("refused a request on %s: %s", PATH, failure)
            self._reply(request, 401, failure.encode())
            if self._on_unverified:  # after the answer; the payload is untrusted, for the audit
                self._on_unverified(
                    failure, _payload(raw, request.headers.get("Content-Type") or "")
                )
            return
        payload = _payload(raw, request.headers.get("Content-Type") or "")
        if payload is None:
            self._reply(request, 400, b"no payload")
            return
        if payload.get("type") == "url_verification":  # Events API set-up handshake
            body = json.dumps({"challenge": payload.get("challenge")}).encode()
            self._reply(request, 200, body, "application/json")
            return
        self._reply(request, 200)  # the ack: before any database, Slack or Prefect work
        self._on_payload(payload)


def _payload(raw: bytes, content_type: str) -> dict[str, Any] | None:
    try:
        if "json" in content_type:
            data = json.loads(raw)
        else:
            data = json.loads(parse_qs(raw.decode())["payload"][0])
    except (ValueError, KeyError, IndexError):
        return None
    return data if isinstance(data, dict) else None
