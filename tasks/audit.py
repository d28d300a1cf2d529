"""Recording a runbook's mutations in the audit trail, from flows, tasks or plain code.

Every change is recorded before (intent) and after (outcome), so a crash in between shows up
as an intent without an outcome. Plain functions, not Prefect tasks: a record must be written
exactly when the caller asks, never retried or cached by the engine. The store comes from
settings (``RUNBOOK_AUDIT_URL``, default a SQLite file in ``RUNBOOK_STATE_DIR``).
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from runbooks.audit import (
    AuditContext,
    AuditRecord,
    AuditStoreError,
    NewRecord,
    RecordFilter,
    carried,
    checkpoints,
    current_context,
    get_store,
    using_context,
)
from runbooks.audit.context import actor_from_run_tags, own_context
from runbooks.audit.redaction import clean, clean_text
from runbooks.audit.summary import (
    artifact_key,
    head_artifact_key,
    run_head_markdown,
    run_summary_markdown,
)

__all__ = [
    "AuditContext",
    "anchor_run_end",
    "audit_context",
    "audited",
    "carried",
    "default_actor",
    "emit_step_event",
    "publish_run_summary",
    "record",
]

logger = logging.getLogger(__name__)

_K8S_KINDS = {"node", "pod", "cluster", "namespace", "lease", "deployment", "daemonset"}


def default_actor() -> str:
    """Who acts when the code does not say: a Prefect run tagged ``actor:<who>`` (or
    ``trigger:<source>``, as the listener and schedules tag runs), else ``RUNBOOK_ACTOR``
    (set per worker, CI job, listener), else the OS user."""
    tagged = _actor_from_run_tags()
    if tagged:
        return tagged
    actor = os.environ.get("RUNBOOK_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _actor_from_run_tags() -> str | None:
    try:
        from prefect.runtime import flow_run

        if not flow_run.id:
            return None
        tags = list(flow_run.tags or [])
    except Exception:  # runtime lookups must never stop a record
        return None
    return actor_from_run_tags(tags)


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

    ``flow_run_id`` defaults to the current Prefect flow run; ``actor`` to the enclosing
    context's actor (a caller that knows who asked wraps the flow), else ``default_actor()``.
    """
    if flow_run_id is None:
        flow_run_id, _ = _prefect_flow_run()
    outer = current_context()
    actor = actor or (outer.actor if outer else None) or default_actor()
    context = AuditContext(runbook=runbook, actor=actor, flow_run_id=flow_run_id)
    own = own_context()
    if own is not None and own.flow_run_id == flow_run_id:
        return using_context(context)  # the same run, nested: its end is the outer one's
    return _run_scope(context)


@dataclass
class _RunHead:
    """The newest record a run wrote, as this process computed its hash."""

    seq: int = 0
    hash: str = ""
    users: int = 0


_run_heads: dict[str | None, _RunHead] = {}
_run_heads_lock = threading.Lock()


def _note_head(stored: AuditRecord) -> None:
    with _run_heads_lock:
        head = _run_heads.get(stored.flow_run_id)
        if head is not None and stored.seq > head.seq:
            head.seq, head.hash = stored.seq, stored.hash


@contextmanager
def _run_scope(context: AuditContext) -> Iterator[AuditContext]:
    """A run's outermost audit context: when it closes, the run's last record (seq and hash)
    is kept outside the database: logged, on the Prefect run (artifact and event), and as a
    signed checkpoint when a key is configured. However the run ends."""
    with _run_heads_lock:
        head = _run_heads.setdefault(context.flow_run_id, _RunHead())
        head.users += 1
    try:
        with using_context(context):
            yield context
    finally:
        with _run_heads_lock:
            head.users -= 1
            if head.users == 0:
                _run_heads.pop(context.flow_run_id, None)
            seq, digest = head.seq, head.hash
        if seq:
            anchor_run_end(context, seq, digest)


def anchor_run_end(context: AuditContext, seq: int, digest: str) -> str | None:
    """Keep the run's final chain head outside the database; returns the checkpoint file
    written, if any. Never raises: the run's own result is what the operator must see."""
    run = context.flow_run_id or "(no run id)"
    checkpoint: str | None = None
    settings = checkpoints.anchor_settings()
    if settings.key is not None:
        try:
            checkpoints.write(
                get_store().location,
                seq,
                digest,
                checkpoints.writer_name(f"run {run} of {context.runbook}"),
                settings,
            )
            checkpoint = str(settings.path)
        except Exception as exc:  # a lost checkpoint is logged; the records are stored
            logger.error("could not write the audit checkpoint for run %s: %s", run, exc)
    message = f"audit trail: run {run} ended at record {seq} (hash {digest})" + (
        f"; signed checkpoint in {checkpoint}" if checkpoint else ""
    )
    _run_log(message)
    if _in_prefect_run():
        _publish_head(context, seq, digest, checkpoint)
    return checkpoint


def _run_log(message: str) -> None:
    """To the Prefect run's log inside a run (kept with the run), else this module's logger."""
    try:
        from prefect.logging import get_run_logger

        get_run_logger().info("%s", message)
    except Exception:  # outside a run (MissingContextError) or Prefect unavailable
        logger.info("%s", message)


def _publish_head(context: AuditContext, seq: int, digest: str, checkpoint: str | None) -> None:
    """The run's final head as a Prefect event and artifact: copies outside the audit
    database that an auditor can compare with ``verify --anchor``."""
    try:
        from prefect.artifacts import create_markdown_artifact
        from prefect.events import emit_event

        emit_event(
            event="kube-runbooks.audit.head",
            resource={
                "prefect.resource.id": "kube-runbooks.audit-trail",
                "prefect.resource.name": "audit trail",
            },
            payload={"seq": seq, "hash": digest, "store": get_store().location},
        )
        create_markdown_artifact(
            markdown=run_head_markdown(
                context.runbook, context.flow_run_id, seq, digest, checkpoint, get_store().location
            ),
            key=head_artifact_key(context.runbook),
            description=f"Audit chain head after run {context.flow_run_id}: record {seq}",
        )
    except Exception as exc:  # views of the head; the checkpoint and the log line remain
        logger.warning("could not publish the audit chain head on the Prefect run: %s", exc)


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
    emit_event: bool = True,
) -> int:
    """Append one record (secrets redacted, bulk truncated) and return its id (sequence number).

    ``actor`` overrides the context's actor for this record (e.g. the Slack user who clicked);
    ``intent_id`` links an outcome to the intent it completes. Inside a Prefect flow run,
    outcomes and events are also emitted as Prefect events (``emit_event=False`` to skip).
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
    stored = get_store().append(new)
    _note_head(stored)
    if emit_event and phase != "intent" and stored.flow_run_id and _in_prefect_run():
        _emit_for(stored)
    return stored.seq


def _in_prefect_run() -> bool:
    run_id, _ = _prefect_flow_run()
    return run_id is not None


def _emit_for(stored: AuditRecord) -> None:
    emit_step_event(
        stored.action,
        stored.target,
        target_kind=stored.target_kind,
        outcome=stored.outcome,
        details=stored.details,
        record_id=stored.seq,
        actor=stored.actor,
    )


def emit_step_event(
    action: str,
    target: str,
    *,
    target_kind: str = "node",
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    record_id: int | None = None,
    actor: str | None = None,
) -> None:
    """Emit a Prefect event for a runbook step (``kube-runbooks.node.cordon.ok``, ...), so the
    UI's event feed and automations see it. Prefect adds the flow run as a related resource.
    Never fails the step: an event lost is logged, the audit record is the truth."""
    try:
        from prefect.events import emit_event

        prefix = "k8s" if target_kind in _K8S_KINDS else "kube-runbooks"
        payload: dict[str, Any] = {"details": clean(details or {})}
        if record_id is not None:
            payload["audit_record"] = record_id
        if actor:
            payload["actor"] = actor
        emit_event(
            event=f"kube-runbooks.{action}.{outcome or 'done'}",
            resource={
                "prefect.resource.id": f"{prefix}.{target_kind}.{target}",
                "prefect.resource.name": target,
                "kube-runbooks.target-kind": target_kind,
            },
            payload=payload,
        )
    except Exception as exc:  # events are a view; never let one stop a runbook
        logger.warning("could not emit Prefect event for %s %s: %s", action, target, exc)


def publish_run_summary(flow_run_id: str | None = None, *, runbook: str | None = None) -> str:
    """Create a Markdown artifact on the run summarising its audit records, with the command
    that shows them in full. Call at the end of a flow (also from ``on_failure`` hooks).
    Returns the Markdown."""
    context = _resolve(None)
    run_id = flow_run_id or context.flow_run_id
    if run_id is None:
        raise ValueError(
            "publish_run_summary needs a flow run: call it inside a flow or pass its id"
        )
    store = get_store()
    records = store.records(RecordFilter(flow_run_id=run_id))
    name = runbook or (records[0].runbook if records else context.runbook)
    open_intents = store.open_intents([r.seq for r in records if r.phase == "intent"])
    markdown = run_summary_markdown(name, run_id, records, open_intents)
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(
            markdown=markdown,
            key=artifact_key(name),
            description=f"Audit records of {name} run {run_id}",
        )
    except Exception as exc:  # the artifact is a view; the records are already stored
        logger.warning("could not create the audit summary artifact for run %s: %s", run_id, exc)
    return markdown


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

    The yielded dict is the outcome's details: fill it with what happened (pods evicted, ...);
    the outcome also repeats the intent's details, so each record reads on its own and
    ``audit show --node`` finds both halves. If the intent cannot be written the block does
    not run: no unaudited change.
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
        failed = {**(details or {}), **result}
        failed["error"] = clean_text(f"{type(exc).__name__}: {exc}")
        try:
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
        except AuditStoreError as audit_exc:
            # The step's own error is what the operator must see; the trail shows the intent
            # without an outcome, which is exactly what "we do not know how it ended" means.
            logger.error("could not record the failure of %s %s: %s", action, target, audit_exc)
        raise
    record(
        action,
        target,
        target_kind=target_kind,
        phase="outcome",
        outcome="ok",
        details={**(details or {}), **result},
        approval_id=approval_id,
        intent_id=intent,
    )
