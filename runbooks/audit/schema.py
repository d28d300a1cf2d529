"""The audit store's tables: the records, and a one-row head that serialises appends.

Times are fixed-width UTC text and details canonical JSON text, so what is hashed is exactly
what is stored, byte for byte, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

records = Table(
    "audit_records",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("runbook", String(200), nullable=False),
    Column("flow_run_id", String(100)),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target_kind", String(50), nullable=False),
    Column("target", String(500), nullable=False),
    Column("phase", String(10), nullable=False),
    Column("outcome", String(100)),
    Column("intent_seq", Integer),
    Column("approval_id", String(200)),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_records_at", "at"),
    Index("ix_audit_records_flow_run_id", "flow_run_id"),
    Index("ix_audit_records_target", "target"),
    Index("ix_audit_records_actor", "actor"),
    Index("ix_audit_records_action", "action"),
)

# One row (id=1): the last record's seq and hash. Appenders lock it, so sequence numbers
# never collide, and `verify` can tell a deleted tail or an appended forgery from the truth.
head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

HEAD_ID = 1
