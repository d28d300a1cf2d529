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


class LeaseLostSignal:
    """Set when this process no longer holds the maintenance Lease: steps check it like
    INTERRUPT, before every change they make (cordon, each eviction, the action, uncordon) and at
    every turn of a wait, so a run that lost the cluster stops changing it at once.

    It also turns set by itself once the hold's safe time has passed (``hold``/``renewed`` give
    it), so a renewal thread stuck in a request cannot keep a lost run going. Unset outside a
    held Lease (e.g. ``--release``, tests of single steps)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._reason: str | None = None
        self._until: float | None = None

    def hold(self, until: float) -> None:
        """A Lease was taken: safe to act until ``until`` (monotonic) unless renewed."""
        with self._lock:
            self._event.clear()
            self._reason, self._until = None, until

    def renewed(self, until: float) -> None:
        with self._lock:
            if self._reason is None:
                self._until = max(self._until or until, until)

    def lose(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason
            self._event.set()

    def clear(self) -> None:
        """The run let its Lease go (released, or finished): nothing is held any more."""
        with self._lock:
            self._event.clear()
            self._reason, self._until = None, None

    def reason(self) -> str | None:
        """Why the Lease is lost, or None while it is held (or none is held)."""
        with self._lock:
            until = self._until
            if self._reason is None and until is not None and time.monotonic() >= until:
                self._reason = "it was not renewed in time (its safe time ran out)"
                self._event.set()
            return self._reason

    def is_set(self) -> bool:
        return self.reason() is not None

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s; True as soon as the Lease is lost."""
        with self._lock:
            until = self._until
        if until is not None:
            timeout = min(timeout, max(0.0, until - time.monotonic()))
        self._event.wait(timeout)
        return self.is_set()


LEASE_LOST = LeaseLostSignal()


class Stopped(RuntimeError):
    """A change was not made because the run is stopping (interrupted, or the Lease lost)."""


def stop_reason() -> str | None:
    """Why steps must stop now (the operator interrupted, the Lease was lost), or None."""
    if INTERRUPT.is_set():
        return "interrupted by the operator"
    lost = LEASE_LOST.reason()
    if lost is not None:
        return f"the maintenance Lease was lost: {lost}"
    return None


def before_change(what: str) -> None:
    """Called right before each mutating request: raises Stopped naming ``what`` and why,
    when the run must not change the cluster any more."""
    reason = stop_reason()
    if reason is not None:
        raise Stopped(f"{what} not done: {reason}")


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
