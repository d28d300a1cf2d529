"""A run's audit records as Markdown, for the Prefect artifact that sits beside the run.

Pure: records in, text out. The artifact outlives nothing (Prefect retention), so it points
at the store with the exact command that shows the full, verifiable record.
"""

from __future__ import annotations

import re

from runbooks.audit.models import AuditRecord

MAX_ROWS = 50


def artifact_key(runbook: str) -> str:
    """Prefect artifact keys allow only ``[a-z0-9-]``; one key per runbook keeps versions."""
    slug = re.sub(r"[^a-z0-9-]+", "-", runbook.lower()).strip("-") or "run"
    return f"audit-{slug}"[:100]


HEAD_ARTIFACT_PREFIX = "audit-head-"
# How `verify --prefect` reads a head back from the artifact: the store line and the command.
HEAD_STORE = re.compile(r"^Store: `([^`]+)`$", re.MULTILINE)
HEAD_ANCHOR = re.compile(r"^runbook audit verify --anchor (\d+):([0-9a-f]{64})$", re.MULTILINE)


def head_artifact_key(runbook: str) -> str:
    """The key of the artifact that keeps a run's final chain head beside the run."""
    return f"{HEAD_ARTIFACT_PREFIX}{artifact_key(runbook).removeprefix('audit-')}"[:100]


def run_head_markdown(
    runbook: str,
    flow_run_id: str | None,
    seq: int,
    digest: str,
    checkpoint: str | None,
    store: str,
) -> str:
    """The chain's head as this run left it: a copy outside the audit database, so deleting
    the run's records later (and rewinding the head) shows against it."""
    run = f"`{flow_run_id}`" if flow_run_id else "(no flow run id)"
    kept = (
        f"A signed checkpoint of it was appended to `{checkpoint}`."
        if checkpoint
        else "No signed checkpoint was written (RUNBOOK_AUDIT_ANCHOR_KEY is not set)."
    )
    return "\n".join(
        [
            f"# Audit chain head: {runbook}",
            "",
            f"Run {run} wrote its last audit record as **record {seq}**, hash `{digest}`.",
            "",
            f"Store: `{store}`",
            "",
            kept,
            "",
            "Check later that the trail still holds it (records deleted, head rewound), by hand",
            "or for every run at once with `runbook audit verify --prefect`:",
            "",
            "```",
            f"runbook audit verify --anchor {seq}:{digest}",
            "```",
        ]
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_summary_markdown(
    runbook: str, flow_run_id: str, records: list[AuditRecord], open_intents: set[int]
) -> str:
    failed = [r for r in records if r.outcome in ("failed", "interrupted")]
    lines = [
        f"# Audit trail: {runbook}",
        "",
        f"Flow run `{flow_run_id}`: **{len(records)} records**, "
        f"{sum(r.phase == 'intent' for r in records)} intended changes, "
        f"{len(failed)} failed, {len(open_intents)} without an outcome.",
        "",
    ]
    if open_intents:
        lines += [
            f"**Intents without an outcome** (the step crashed or is still running): "
            f"records {', '.join(str(s) for s in sorted(open_intents))}.",
            "",
        ]
    if records:
        last = records[-1]
        lines += [
            f"Last record of this run: **{last.seq}**, hash `{last.hash}` "
            f"(check it later with `runbook audit verify --anchor {last.seq}:{last.hash}`).",
            "",
        ]
        lines += [
            "| # | time (UTC) | actor | action | target | phase | outcome |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in records[:MAX_ROWS]:
            outcome = r.outcome or ("**no outcome**" if r.seq in open_intents else "")
            lines.append(
                f"| {r.seq} | {r.at[:19].replace('T', ' ')} | {_cell(r.actor)} | {r.action} "
                f"| {_cell(r.target_kind + '/' + r.target)} | {r.phase} | {outcome} |"
            )
        if len(records) > MAX_ROWS:
            lines.append(f"| … | {len(records) - MAX_ROWS} more records | | | | | |")
        lines.append("")
    lines += [
        "The audit store holds the full, hash-chained record (it outlives Prefect's retention):",
        "",
        "```",
        f"runbook audit show --run {flow_run_id}",
        "runbook audit verify",
        "```",
    ]
    return "\n".join(lines)
