"""One text form for a value, and its SHA-256: what an approver signs and the audit chain links.

The plan digest (what an approval names), the audit chain (each record's hash) and the approval
record (the digest of a plan shown as text) all hash through here, so "the same plan" and "the
same record" mean the same bytes everywhere. ``canonical_json`` is the audit chain's historical
form (sorted keys, no spaces, UTF-8 kept readable): it must not change, or existing chains stop
verifying (tests/unit/test_kit_digest.py pins a known record's hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """The one text form of a JSON value: sorted keys, no spaces, UTF-8 kept readable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    """SHA-256 of ``text`` as UTF-8, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value`` (a plan's ``model_dump(mode="json")``)."""
    return sha256_hex(canonical_json(value))
