"""Small readers for assertions: the run's Prefect state, the audit trail of one approval."""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client

from runbooks.audit import AuditRecord, RecordFilter, get_store


def run_state(flow_run_id: str) -> str:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return state.type.value if state else "NONE"


def approval_trail(approval_id: str) -> list[AuditRecord]:
    records = get_store().records(RecordFilter(target_kind="approval"))
    return [r for r in records if r.approval_id == approval_id]


def refusals(approval_id: str) -> list[str]:
    return [
        str(r.details.get("reason"))
        for r in approval_trail(approval_id)
        if r.action == "approval.refuse"
    ]
