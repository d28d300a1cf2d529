"""Run history: Prefect's flow runs (state, start, end) joined with who the audit store says
started them. Prefect may be unconfigured, unreachable or past its retention; the audit store
still answers, and the result says which source each fact came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from runbooks.audit.context import actor_from_run_tags
from runbooks.audit.models import RunSummary, format_time
from runbooks.audit.redaction import clean
from runbooks.audit.store import AuditStore


class RunHistoryEntry(BaseModel):
    """One run as `runbook history` shows it."""

    flow_run_id: str
    runbook: str
    status: str
    started_by: str
    start: str | None
    end: str | None
    duration_seconds: float | None
    audit_records: int
    audit_failures: int
    in_prefect: bool
    parameters: dict[str, Any] | None = None  # from Prefect, secrets redacted


class RunHistory(BaseModel):
    runs: list[RunHistoryEntry]
    prefect_api: str | None
    prefect_note: str | None


class PrefectRun(BaseModel):
    flow_run_id: str
    runbook: str
    status: str
    start: datetime | None
    end: datetime | None
    started_by: str | None
    parameters: dict[str, Any] | None = None


def prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return str(url) if url else None


def _started_by_from_prefect(tags: list[str], created_by: object) -> str | None:
    """Who started a run: its actor/trigger tag, else whoever Prefect says created it."""
    tagged = actor_from_run_tags(tags)
    if tagged:
        return tagged
    name = getattr(created_by, "display_value", None)
    return str(name) if name else None


def read_prefect_runs(limit: int, runbook: str | None = None) -> list[PrefectRun]:
    """The newest started flow runs from the configured Prefect API (raises on failure)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterId,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        flow_filter = FlowFilter(name=FlowFilterName(any_=[runbook])) if runbook else None
        flow_runs = client.read_flow_runs(
            flow_filter=flow_filter,
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)),
            sort=FlowRunSort.START_TIME_DESC,
            limit=min(limit, 200),
        )
        flow_ids = list({fr.flow_id for fr in flow_runs})
        flows = (
            client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))
            if flow_ids
            else []
        )
    names = {f.id: f.name for f in flows}
    return [
        PrefectRun(
            flow_run_id=str(fr.id),
            runbook=names.get(fr.flow_id, "?"),
            status=fr.state_name or (fr.state.name if fr.state else None) or "?",
            start=fr.start_time,
            end=fr.end_time,
            started_by=_started_by_from_prefect(list(fr.tags or []), fr.created_by),
            parameters=clean(dict(fr.parameters or {})),
        )
        for fr in flow_runs
    ]


def _from_prefect(run: PrefectRun, summary: RunSummary | None) -> RunHistoryEntry:
    duration = (run.end - run.start).total_seconds() if run.start and run.end else None
    return RunHistoryEntry(
        flow_run_id=run.flow_run_id,
        runbook=run.runbook,
        status=run.status,
        started_by=(summary.actor if summary else None) or run.started_by or "-",
        start=format_time(run.start) if run.start else None,
        end=format_time(run.end) if run.end else None,
        duration_seconds=duration,
        audit_records=summary.records if summary else 0,
        audit_failures=summary.failed if summary else 0,
        in_prefect=True,
        parameters=run.parameters,
    )


def _from_audit(summary: RunSummary, status: str) -> RunHistoryEntry:
    start = datetime.strptime(summary.first_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    end = datetime.strptime(summary.last_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    return RunHistoryEntry(
        flow_run_id=summary.flow_run_id,
        runbook=summary.runbook,
        status=status,
        started_by=summary.actor,
        start=summary.first_at,
        end=summary.last_at,
        duration_seconds=(end - start).total_seconds(),
        audit_records=summary.records,
        audit_failures=summary.failed,
        in_prefect=False,
    )


def run_history(store: AuditStore, limit: int = 20, runbook: str | None = None) -> RunHistory:
    """Newest runs first, from Prefect when it answers, always with the audit store's view."""
    api = prefect_api_url()
    note: str | None = None
    prefect_runs: list[PrefectRun] = []
    if api is None:
        note = (
            "no Prefect API configured (PREFECT_API_URL is unset): "
            "runs below come from the audit store only, their Prefect state is unknown"
        )
    else:
        try:
            prefect_runs = read_prefect_runs(limit, runbook)
        except Exception as exc:  # any transport or API error: say so, keep the audit view
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            note = (
                f"Prefect API at {api} did not answer ({first}): "
                "runs below come from the audit store only"
            )
    audit_runs = {s.flow_run_id: s for s in store.runs(limit=limit * 5)}
    if prefect_runs:
        audit_runs.update(
            {s.flow_run_id: s for s in store.runs([r.flow_run_id for r in prefect_runs])}
        )
    entries = [_from_prefect(run, audit_runs.pop(run.flow_run_id, None)) for run in prefect_runs]
    status = "unknown (not in Prefect)" if api and note is None else "unknown"
    oldest_prefect = min((e.start for e in entries if e.start), default=None)
    for summary in audit_runs.values():
        if runbook and summary.runbook != runbook:
            continue
        # Audit-only runs older than Prefect's page are simply beyond it, not missing from it.
        if len(prefect_runs) >= limit and oldest_prefect and summary.first_at < oldest_prefect:
            continue
        entries.append(_from_audit(summary, status))
    entries.sort(key=lambda e: e.start or "", reverse=True)
    return RunHistory(runs=entries[:limit], prefect_api=api, prefect_note=note)
