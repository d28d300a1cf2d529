"""Recording a runbook's mutations in the audit trail, from flows, tasks or plain code.

Every change is recorded before (intent) and after (outcome), so a crash in between shows up
as an intent without an outcome. Plain functions, not Prefect tasks: a record must be written
exactly when the caller asks, never retried or cached by the engine. The store comes from
settings (``RUNBOOK_AUDIT_URL``, default a SQLite file in ``RUNBOOK_STATE_DIR``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal

from runbooks.audit import AuditContext, NewRecord, current_context, get_store, using_context
from runbooks.audit.redaction import clean_text

__all__ = ["AuditContext", "audit_context", "audited", "default_actor", "record"]


def default_actor() -> str:
    """``RUNBOOK_ACTOR`` (set by schedules, the listener, CI), else the OS user."""
    actor = os.environ.get("RUNBOOK_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _prefect_flow_run() -> tuple[str | None, str | None]:
    """The current Prefect flow run's id and flow name, or (None, None) outside one."""
    try:
        from prefect.runtime import flow_run
    except ImportError:  # pragma: no cover - prefect is a dependency
        return None, None
    run_id = flow_run.id
    name = flow_run.flow_name if run_id else None
    return (str(run_id) if run_id else None), name


def audit_context(
    runbook: str, actor: str | None = None, *, flow_run_id: str | None = None
) -> AbstractContextManager[AuditContext]:
    """Say which runbook and actor the records made inside this block belong to.

    ``flow_run_id`` defaults to the current Prefect flow run; ``actor`` to ``default_actor()``.
    """
    if flow_run_id is None:
        flow_run_id, _ = _prefect_flow_run()
    context = AuditContext(runbook=runbook, actor=actor or default_actor(), flow_run_id=flow_run_id)
    return using_context(context)


def _resolve(actor: str | None) -> AuditContext:
    context = current_context()
    run_id, flow_name = _prefect_flow_run()
    if context is None:
        return AuditContext(
            runbook=flow_name or "adhoc", actor=actor or default_actor(), flow_run_id=run_id
        )
    updates: dict[str, Any] = {}
    if actor:
        updates["actor"] = actor
    if context.flow_run_id is None and run_id:
        updates["flow_run_id"] = run_id
    return context.model_copy(update=updates) if updates else context


def record(
    action: str,
    target: str,
    *,
    target_kind: str = "node",
    phase: Literal["intent", "outcome", "event"] = "event",
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    approval_id: str | None = None,
    actor: str | None = None,
    intent_id: int | None = None,
) -> int:
    """Append one record (secrets redacted, bulk truncated) and return its id (sequence number).

    ``actor`` overrides the context's actor for this record (e.g. the Slack user who clicked);
    ``intent_id`` links an outcome to the intent it completes.
    """
    context = _resolve(actor)
    new = NewRecord(
        runbook=context.runbook,
        actor=context.actor,
        flow_run_id=context.flow_run_id,
        action=action,
        target_kind=target_kind,
        target=target,
        phase=phase,
        outcome=outcome,
        intent_seq=intent_id,
        approval_id=approval_id,
        details=details or {},
    )
    return get_store().append(new).seq


@contextmanager
def audited(
    action: str,
    target: str,
    *,
    target_kind: str = "node",
    details: dict[str, Any] | None = None,
    approval_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Record the intent, run the block, record the outcome linked to it; errors re-raised.

    The yielded dict is the outcome's details: fill it with what happened (pods evicted, ...).
    If the intent cannot be written the block does not run: no unaudited change.
    """
    intent = record(
        action,
        target,
        target_kind=target_kind,
        phase="intent",
        details=details,
        approval_id=approval_id,
    )
    result: dict[str, Any] = {}
    try:
        yield result
    except BaseException as exc:
        failed = dict(result)
        failed["error"] = clean_text(f"{type(exc).__name__}: {exc}")
        record(
            action,
            target,
            target_kind=target_kind,
            phase="outcome",
            outcome="failed" if isinstance(exc, Exception) else "interrupted",
            details=failed,
            approval_id=approval_id,
            intent_id=intent,
        )
        raise
    record(
        action,
        target,
        target_kind=target_kind,
        phase="outcome",
        outcome="ok",
        details=result,
        approval_id=approval_id,
        intent_id=intent,
    )
