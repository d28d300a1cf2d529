"""The approvals table lives in the audit store's database, through the audit store's engine.

One database for the record of decisions and the trail about them: ``RUNBOOK_AUDIT_URL``
(PostgreSQL in production) or SQLite in the state dir.
"""

from __future__ import annotations

from sqlalchemy import Engine

from runbooks.audit import get_store


def default_engine() -> Engine:
    return get_store().engine
