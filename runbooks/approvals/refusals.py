"""Requests the listener refused before any decision: counted and logged, never audited.

The audit trail is for what people with a say in the decision did. Unsigned, forged, stale or
malformed requests, and signed clicks that name no approval (or not from its own message),
are noise an outsider can make at will: each one as a hash-chained row would let anyone grow
the trail and contend for its append lock. So they are in-process counters (``GET /metrics``
on the HTTP transport, the summary when the listener stops) and at most one log line per
``log_every`` seconds, with the counts since the previous line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("runbooks.approvals")

# Every reason a request can be refused without an audit record, declared so /metrics shows 0s.
KINDS = (
    "unsigned",  # no Slack signature headers
    "bad_signature",  # signature does not match the body and our signing secret
    "bad_timestamp",  # X-Slack-Request-Timestamp not a number
    "stale_timestamp",  # more than 5 minutes off: a replay, or a badly wrong clock
    "malformed_payload",  # signed, but not a shape Slack sends
    "foreign_app",  # signed click for another app or workspace
    "unknown_approval",  # signed click naming no approval we have
    "wrong_message",  # signed click naming a real approval, but not from its own message
    "bad_request",  # not HTTP we serve: bad request line, chunked body, size limits
    "header_timeout",  # headers not complete within the header timeout (slowloris)
    "body_timeout",  # body not complete within the body timeout
    "over_capacity",  # more open connections than the cap
)


def signature_kind(reason: str) -> str:
    """The counter for a ``signature.verification_failure`` reason."""
    if reason.startswith("missing"):
        return "unsigned"
    if reason.startswith("stale"):
        return "stale_timestamp"
    if reason.startswith("malformed"):
        return "bad_timestamp"
    return "bad_signature"


class RefusalCounter:
    """Thread-safe totals by kind, and a log line at most every ``log_every`` seconds."""

    def __init__(
        self, *, log_every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter({kind: 0 for kind in KINDS})
        self._since_log: Counter[str] = Counter()
        self._latest = ""
        self._log_every = log_every
        self._clock = clock
        self._logged_at: float | None = None

    def refuse(self, kind: str, detail: str) -> None:
        with self._lock:
            self._totals[kind] += 1
            self._since_log[kind] += 1
            self._latest = detail
            self._log_if_due()

    def flush(self) -> None:
        """Log what was counted since the last line, if the interval has passed (the sweep
        calls this, so a burst that stopped is still reported)."""
        with self._lock:
            self._log_if_due()

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def summary(self) -> str:
        counts = {k: v for k, v in self.totals().items() if v}
        if not counts:
            return "refused no requests"
        total = sum(counts.values())
        return f"refused {total} request{'' if total == 1 else 's'} ({_counts(counts)})"

    def metrics(self) -> list[str]:
        """Prometheus text exposition lines for the totals."""
        lines = [
            "# HELP runbook_listener_refused_total Requests refused before any decision "
            "(not audited), by reason.",
            "# TYPE runbook_listener_refused_total counter",
        ]
        lines += [
            f'runbook_listener_refused_total{{reason="{kind}"}} {count}'
            for kind, count in sorted(self.totals().items())
        ]
        return lines

    def _log_if_due(self) -> None:
        if not self._since_log:
            return
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self._log_every:
            return
        window = "" if self._logged_at is None else f" in the last {now - self._logged_at:.0f} s"
        total = sum(self._since_log.values())
        log.warning(
            "refused %d request%s%s (%s); latest: %s",
            total,
            "" if total == 1 else "s",
            window,
            _counts(self._since_log),
            self._latest,
        )
        self._since_log.clear()
        self._logged_at = now


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
