"""The audit trail: an append-only, hash-chained record of who did what to which target, when.

Prefect keeps states and logs with retention; this store keeps the record that must outlive
them. SQLite by default, PostgreSQL via ``RUNBOOK_AUDIT_URL``.
"""

from runbooks.audit.chain import Break, Verdict
from runbooks.audit.context import carried, current_context, using_context
from runbooks.audit.models import AuditContext, AuditRecord, NewRecord, Phase, RecordFilter
from runbooks.audit.store import AuditStore, AuditStoreError, default_url, get_store

__all__ = [
    "AuditContext",
    "AuditRecord",
    "AuditStore",
    "AuditStoreError",
    "Break",
    "NewRecord",
    "Phase",
    "RecordFilter",
    "Verdict",
    "carried",
    "current_context",
    "default_url",
    "get_store",
    "using_context",
]
