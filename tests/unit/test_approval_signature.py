"""Is an HTTP request really from Slack: HMAC over the raw body, within 5 minutes."""

from __future__ import annotations

import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from runbooks.approvals.signature import verification_failure

SECRET = "test-signing-secret"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_800_000_000


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def signed(body: bytes = BODY, ts: int | str = NOW, secret: str = SECRET) -> dict[str, str]:
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": str(sig)}


@pytest.mark.parametrize(
    ("body", "headers", "now", "expected"),
    [
        (BODY, signed(), NOW, None),
        (BODY, signed(), NOW + 299, None),
        (BODY, signed(), NOW + 301, "stale request timestamp (301 s old, limit 300 s)"),
        (BODY, signed(), NOW - 301, "stale request timestamp (301 s old, limit 300 s)"),
        (BODY + b"x", signed(), NOW, "invalid signature"),  # tampered body
        (BODY, signed(secret="another-app"), NOW, "invalid signature"),
        (BODY, signed(ts="abc"), NOW, "malformed request timestamp"),
        (BODY, {}, NOW, "missing Slack signature headers"),
        (
            b"\xff\xfe",
            signed(body=b"\xff\xfe".decode("latin-1").encode()),
            NOW,
            "invalid signature",
        ),
    ],
)
def test_only_fresh_requests_signed_with_our_secret_pass(body, headers, now, expected):
    assert verification_failure(SECRET, body, headers, FixedClock(now)) == expected


def test_header_names_are_case_insensitive():
    lower = {k.lower(): v for k, v in signed().items()}
    assert verification_failure(SECRET, BODY, lower, FixedClock(NOW)) is None
