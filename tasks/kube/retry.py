"""Retry transient API failures with capped exponential backoff and full jitter.

Transient: 5xx, 429 from API rate limiting, connection resets, timeouts, and 409 conflicts on
writes that re-read before retrying. Never retried: 4xx that mean the request was wrong (an
unknown node, a bad selector) — repeating them only delays the error message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import urllib3.exceptions
from kubernetes.client.rest import ApiException

T = TypeVar("T")
log = logging.getLogger("kube_runbooks.kube")

# Set when the operator interrupts the run (Ctrl-C, SIGTERM, a cancel in Prefect): long waits
# (drains, Ready, a Job, a command) stop at their next turn instead of holding the process
# until their timeout.
INTERRUPT = threading.Event()
# The longest a wait goes without looking at INTERRUPT. A Prefect worker kills a cancelled
# run outright after ~30 s; stopping well within that lets the run release its Lease itself.
TURN_SECONDS = 10

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_NETWORK = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException, conflicts: bool = False) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUS or (conflicts and exc.status == 409)
    return isinstance(exc, _NETWORK)


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 10.0) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2**attempt))


def retrying(
    call: Callable[[], T],
    what: str,
    attempts: int = 6,
    conflicts: bool = False,
    base: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a transient failure wait and try again, up to ``attempts`` times."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc, conflicts) or attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt, base)
            log.warning("%s failed (%s); retrying in %.1fs", what, describe_error(exc), delay)
            sleep(delay)
    raise AssertionError("unreachable")


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def watch_can_resume(exc: BaseException, *also: int) -> bool:
    """A watch that ended this way is simply re-established after a fresh read: 410 Gone
    (resourceVersion too old), or any transient failure (dropped connection, 5xx)."""
    if isinstance(exc, ApiException) and (exc.status == 410 or exc.status in also):
        return True
    return is_transient(exc)
