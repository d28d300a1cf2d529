"""The HTTP transport: Slack's interactivity requests at ``POST /slack/events``.

An asyncio server on one thread: an open connection costs a socket, not a thread, until its
request is complete, so connections that trickle their headers (slowloris) cannot exhaust
threads. Each request must bring its headers within ``header_timeout`` and its body within
``body_timeout`` (Slack sends both at once and gives up after 3 s); at most
``max_connections`` are open at once, the rest get 503 at once.

The signature is checked on the raw bytes before anything is parsed; unsigned, stale or forged
requests get 401, malformed ones 400; all of them are counted (``GET /metrics``), not audited.
A verified click is acknowledged at once and decided afterwards, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock

from runbooks.approvals.refusals import RefusalCounter, signature_kind
from runbooks.approvals.signature import verification_failure

log = logging.getLogger("runbooks.approvals")

PATH = "/slack/events"
MAX_BODY = 1 << 20
MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT = 5.0
BODY_TIMEOUT = 5.0
MAX_CONNECTIONS = 512

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}

Reply = tuple[int, bytes, str]


class HttpListener:
    """Serves ``/slack/events``, ``/healthz`` and ``/metrics``.

    ``check`` (optional) refuses a verified payload with a one-line reason before the ack (400);
    ``on_payload`` runs after the ack, in a worker thread.
    """

    def __init__(
        self,
        signing_secret: str,
        on_payload: Callable[[dict[str, Any]], None],
        *,
        check: Callable[[dict[str, Any]], str | None] | None = None,
        refusals: RefusalCounter | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._secret = signing_secret
        self._on_payload = on_payload
        self._check = check
        self.refusals = refusals or RefusalCounter()
        self._clock = clock
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._max_connections = max_connections
        self._open = 0
        # Bound here, so a port in use fails the constructor (the CLI's one-line error).
        self._socket = socket.create_server((host, port), backlog=128)
        self._work = ThreadPoolExecutor(max_workers=4, thread_name_prefix="http-payload")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}{PATH}"

    def stats(self) -> dict[str, int]:
        return {"open_connections": self._open, **self.refusals.totals()}

    def start(self) -> HttpListener:
        self._thread = threading.Thread(target=self._run, daemon=True, name="http-listener")
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._socket.close()
        self._work.shutdown(wait=True)

    # --- the event loop ----------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, sock=self._socket, limit=MAX_HEADER_BYTES
        )
        self._ready.set()
        async with server:
            await self._stopping.wait()
        # leaving asyncio.run cancels the connections still open; each closes its socket

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max_connections:
            self.refusals.refuse("over_capacity", f"more than {self._max_connections} connections")
            await self._send(writer, (503, b"too many connections", "text/plain"))
            await _close(writer)
            return
        self._open += 1
        try:
            reply, payload = await self._request(reader)
            if reply is not None:
                await self._send(writer, reply)
            if payload is not None:  # after the ack: the decision never delays it
                asyncio.get_running_loop().run_in_executor(self._work, self._hand_on, payload)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing was decided
        finally:
            self._open -= 1
            await _close(writer)

    async def _request(
        self, reader: asyncio.StreamReader
    ) -> tuple[Reply | None, dict[str, Any] | None]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._header_timeout)
        except TimeoutError:
            return self._refused("header_timeout", 408, "headers not received in time"), None
        except asyncio.LimitOverrunError:
            return self._refused("bad_request", 431, "request headers too large"), None
        parsed = _parse_head(head)
        if parsed is None:
            return self._refused("bad_request", 400, "malformed request line or header"), None
        method, path, headers = parsed
        if method == "GET":
            return self._get(path), None
        if method != "POST":
            return (405, b"method not allowed", "text/plain"), None
        if path != PATH:
            return (404, b"not found", "text/plain"), None
        if "transfer-encoding" in headers:
            return self._refused("bad_request", 411, "send a Content-Length, not chunks"), None
        length_text = headers.get("content-length", "")
        length = int(length_text) if length_text.isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            reason = "missing, malformed or too large Content-Length"
            return self._refused("bad_request", 413, reason), None
        try:
            raw = await asyncio.wait_for(reader.readexactly(length), self._body_timeout)
        except TimeoutError:
            return self._refused("body_timeout", 408, "body not received in time"), None
        return self._post(raw, headers)

    # --- what to answer ------------------------------------------------------------------------
    def _get(self, path: str) -> Reply:
        if path == "/healthz":
            return 200, b"ok", "text/plain"
        if path == "/metrics":
            lines = [
                *self.refusals.metrics(),
                "# HELP runbook_listener_open_connections HTTP connections open now.",
                "# TYPE runbook_listener_open_connections gauge",
                f"runbook_listener_open_connections {self._open}",
            ]
            return 200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4"
        return 404, b"not found", "text/plain"

    def _post(
        self, raw: bytes, headers: dict[str, str]
    ) -> tuple[Reply | None, dict[str, Any] | None]:
        failure = verification_failure(self._secret, raw, headers, self._clock)
        if failure:
            return self._refused(signature_kind(failure), 401, failure), None
        payload = _payload(raw, headers.get("content-type", ""))
        if payload is None:
            reason = "malformed payload: no JSON object in the body"
            return self._refused("malformed_payload", 400, reason), None
        if payload.get("type") == "url_verification":  # Events API set-up handshake
            challenge = json.dumps({"challenge": str(payload.get("challenge"))[:200]}).encode()
            return (200, challenge, "application/json"), None
        problem = self._check(payload) if self._check else None
        if problem:
            return self._refused("malformed_payload", 400, problem), None
        return (200, b"", "text/plain"), payload

    def _refused(self, kind: str, status: int, reason: str) -> Reply:
        self.refusals.refuse(kind, reason)
        return status, reason.encode(), "text/plain"

    def _hand_on(self, payload: dict[str, Any]) -> None:
        try:
            self._on_payload(payload)
        except Exception:
            log.exception("handing on a verified request failed")

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
        status, body, content_type = reply
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), 5)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
        await asyncio.wait_for(writer.wait_closed(), 1)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """Method, path (without query) and lower-cased headers; None if not well-formed HTTP/1."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or (name == "content-length" and name in headers):
            return None
        headers[name] = value.strip()
    return parts[0], parts[1].split("?")[0], headers


def _payload(raw: bytes, content_type: str) -> dict[str, Any] | None:
    try:
        if "json" in content_type:
            data = json.loads(raw)
        else:
            data = json.loads(parse_qs(raw.decode())["payload"][0])
    except (ValueError, KeyError, IndexError):
        return None
    return data if isinstance(data, dict) else None
