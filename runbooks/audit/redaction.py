"""Keep secrets and bulk out of the audit trail: records outlive everything, so they must be safe.

Values under keys named like credentials are replaced, strings that look like credentials
(bearer tokens, JWTs, Slack tokens, PEM keys, kubeconfigs) are replaced wherever they appear,
and long text or lists are cut with their original size noted.
"""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "[redacted]"
MAX_TEXT = 2000
MAX_ITEMS = 100
MAX_DEPTH = 8
MAX_DETAILS_BYTES = 64 * 1024

_SECRET_KEY = re.compile(
    r"(token|secret|passw(or)?d|passphrase|api[_-]?key|private[_-]?key|credential|"
    r"authorization|auth[_-]?header|cookie|client[_-]?key|key[_-]?data|"
    r"certificate[_-]?authority[_-]?data|signing[_-]?key)",
    re.IGNORECASE,
)

_SECRET_TEXT: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private key",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
    ),
    (
        "kubeconfig data",
        re.compile(
            r"(client-key-data|client-certificate-data|certificate-authority-data|token):\s*\S+"
        ),
    ),
    ("bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")),
    ("slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}")),
    ("password in url", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")),
)


def is_secret_key(key: str) -> bool:
    """Keys an operator would recognise as holding a credential."""
    return bool(_SECRET_KEY.search(key))


_KUBECONFIG = re.compile(r"""kind["']?:\s*["']?Config\b""")
_KUBECONFIG_PARTS = ("clusters", "users", "contexts")


def looks_like_kubeconfig(text: str) -> bool:
    return bool(_KUBECONFIG.search(text)) and any(part in text for part in _KUBECONFIG_PARTS)


def scrub_text(text: str) -> str:
    """Replace credential-looking parts of free text (error messages, command output)."""
    if looks_like_kubeconfig(text):
        return f"[redacted kubeconfig, {len(text.encode())} bytes]"
    for label, pattern in _SECRET_TEXT:
        text = pattern.sub(f"[redacted {label}]", text)
    return text


def truncate_text(text: str, limit: int = MAX_TEXT) -> str:
    """Keep the start of long text and say how long it was, so the record stays readable."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text)} chars, {len(text.encode())} bytes]"


def clean_text(text: str) -> str:
    return truncate_text(scrub_text(text))


def clean(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with secrets redacted and bulk truncated."""
    if depth > MAX_DEPTH:
        return "[truncated: nested too deep]"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bytes):
        return f"[{len(value)} bytes omitted]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                out["..."] = f"[truncated: {len(value)} keys in total]"
                break
            name = str(key)
            # Numbers and flags under such keys (token_count, password_set) are not secrets.
            secret = is_secret_key(name) and item and not isinstance(item, bool | int | float)
            out[name] = REDACTED if secret else clean(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = [clean(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            kept.append(f"[truncated: {len(items)} items in total]")
        return kept
    if hasattr(value, "model_dump"):
        return clean(value.model_dump(mode="json"), depth)
    return clean_text(str(value))


def clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details ready for the chain: cleaned, and replaced by a preview if still too large."""
    cleaned: dict[str, Any] = clean(dict(details or {}))
    text = json.dumps(cleaned, sort_keys=True, ensure_ascii=False)
    size = len(text.encode())
    if size <= MAX_DETAILS_BYTES:
        return cleaned
    return {
        "truncated": True,
        "original_bytes": size,
        "preview": truncate_text(text, MAX_TEXT),
    }
