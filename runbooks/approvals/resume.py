"""Carry a recorded decision to the waiting flow run through the Prefect API.

The run input is only a nudge: the gate re-reads the approval row after resuming, so input
made up elsewhere (the Prefect UI's Resume form) cannot pass it.
"""

from __future__ import annotations

import time
from typing import Literal
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.input import RunInput

from runbooks.approvals.record import Approval, ApprovalState

Resumed = Literal["resumed", "already-running", "finished", "too-late", "rejected-by-server"]


class ApprovalDecision(RunInput):
    """What the gate's pause waits for. Every default is the safe answer (not approved)."""

    approval_id: str = ""
    approved: bool = False
    decided_by: str = ""


def decision_input(approval: Approval) -> dict[str, object]:
    return {
        "approval_id": approval.id,
        "approved": approval.state is ApprovalState.APPROVED,
        "decided_by": ",".join(u.user for u in approval.votes),
    }


def resume_waiting_run(approval: Approval, *, wait_for_pause: float = 15.0) -> Resumed:
    """Resume the approval's flow run; if it has not paused yet (a click faster than the
    gate), keep trying for ``wait_for_pause`` seconds: the gate also checks the row just
    before pausing, so one of the two always sees the decision."""
    run_id = UUID(approval.flow_run_id)
    deadline = time.monotonic() + wait_for_pause
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            state = run.state
            if state is not None and state.is_paused():
                response = client.resume_flow_run(run_id, run_input=decision_input(approval))
                if response.status != SetStateStatus.REJECT:
                    return "resumed"
                if response.state is not None and response.state.type == StateType.FAILED:
                    return "too-late"
                return "rejected-by-server"
            if state is None or state.is_final():
                return "finished"
            if time.monotonic() >= deadline:
                return "already-running"
            time.sleep(0.25)
