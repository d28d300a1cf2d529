"""`runbook listen --http` under slowloris: connections that never finish their headers (or
their body) are closed after the read timeout, hold no thread while they hang, cannot exceed
the connection cap, and a real click is still answered at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from devtools.slack_standin import ClickSimulator, SlackStandin
from runbooks.approvals.listener_http import HttpListener

SECRET = "test-signing-secret"
CLICK = {"type": "block_actions", "actions": [{"action_id": "runbook_approve", "value": "apr_1"}]}
HEADER_TIMEOUT = 5.0  # the documented default; Slack itself gives up after 3 s


@pytest.fixture
def clicks() -> ClickSimulator:
    return ClickSimulator(SlackStandin(), SECRET)


@pytest.fixture
def hanging() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


def open_slow(address: tuple[str, int], first_bytes: bytes) -> socket.socket:
    s = socket.create_connection(address, timeout=5)
    s.sendall(first_bytes)
    return s


def closed_after(s: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed ``s`` (read everything it sent), or None if it did not
    within ``limit``."""
    started = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


@pytest.mark.slow
def test_unfinished_requests_are_closed_after_the_timeout_without_holding_threads(
    clicks: ClickSimulator, hanging: list[socket.socket]
):
    listener = HttpListener(SECRET, lambda payload: None).start()
    try:
        threads_before = threading.active_count()
        started = time.monotonic()
        for i in range(300):
            if i % 3:  # headers never finished
                hanging.append(open_slow(listener.address, b"POST /slack/events HTTP/1.1\r\nHo"))
            else:  # headers complete, body never finished
                hanging.append(
                    open_slow(
                        listener.address,
                        b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 100\r\n\r\npayload=",
                    )
                )
        time.sleep(0.5)

        assert threading.active_count() - threads_before <= 4  # not one thread per connection
        answer = clicks.http_click(listener.url, CLICK)  # a real click while they hang
        assert (answer.status, answer.seconds < 1) == (200, True)

        remaining = HEADER_TIMEOUT + 3 - (time.monotonic() - started)
        closed = [closed_after(s, max(remaining, 0.1)) for s in hanging]
        assert closed.count(None) == 0, f"{closed.count(None)} of 300 still open"
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
    finally:
        listener.stop()


def test_connections_beyond_the_cap_are_refused_at_once(
    clicks: ClickSimulator, hanging: list[socket.socket]
):
    listener = HttpListener(SECRET, lambda payload: None, max_connections=10).start()
    try:
        for _ in range(10):
            hanging.append(open_slow(listener.address, b"POST /slack/events HTTP/1.1\r\n"))
        time.sleep(0.3)

        over = open_slow(listener.address, b"")
        hanging.append(over)
        over.settimeout(2)
        answer = over.recv(4096)

        assert answer.startswith(b"HTTP/1.1 503")
        assert listener.stats()["open_connections"] == 10
    finally:
        listener.stop()


def test_a_header_block_larger_than_the_limit_is_refused(hanging: list[socket.socket]):
    listener = HttpListener(SECRET, lambda payload: None).start()
    try:
        s = open_slow(listener.address, b"POST /slack/events HTTP/1.1\r\nX: " + b"a" * 70_000)
        hanging.append(s)
        s.settimeout(3)
        assert b" 431 " in s.recv(4096).split(b"\r\n")[0]
    finally:
        listener.stop()
