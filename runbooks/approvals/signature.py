"""Is an HTTP request really from Slack? HMAC over the raw body, and not older than 5 minutes."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier

MAX_AGE_SECONDS = 300


def verification_failure(
    signing_secret: str, raw_body: bytes, headers: Mapping[str, str], clock: Clock | None = None
) -> str | None:
    """Why the request must be refused (answered with 401), or None if it is authentic.

    Checked on the raw bytes, before any parsing. The reason names the check, never the secret.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("x-slack-request-timestamp")
    signature = lower.get("x-slack-signature")
    if not timestamp or not signature:
        return "missing Slack signature headers"
    clock = clock or Clock()
    try:
        age = abs(clock.now() - int(timestamp))
    except ValueError:
        return "malformed request timestamp"
    if age > MAX_AGE_SECONDS:
        return f"stale request timestamp ({int(age)} s old, limit {MAX_AGE_SECONDS} s)"
    verifier = SignatureVerifier(signing_secret, clock=clock)
    try:
        valid = verifier.is_valid(body=raw_body, timestamp=timestamp, signature=signature)
    except ValueError:  # a body that is not UTF-8 cannot have been signed by Slack
        valid = False
    if not valid:
        return "invalid signature"
    return None
