"""A slack-sdk WebClient that retries what Slack asks to be retried.

slack-sdk's defaults retry only one connection error; a 429 with Retry-After would fail the
gate. Used by the gate's tasks and by the listener alike.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from runbooks.approvals.config import SlackSettings

# ok:false errors that are Slack's trouble, not ours: worth another try.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def web_client(settings: SlackSettings, *, timeout: int = 10) -> WebClient:
    token = settings.bot_token.get_secret_value() if settings.bot_token else None
    return WebClient(
        token=token,
        base_url=settings.base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=5),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )
