"""``runbook audit``: show, verify, anchor and export the audit trail; and ``runbook history``.

Tables for people, ``--output json`` for machines. Bad input exits 2 with one line; an
unreachable store exits 1; a broken chain exits 1 and names the first broken record.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from runbooks.audit import (
    AuditRecord,
    AuditStore,
    AuditStoreError,
    RecordFilter,
    Verdict,
    checkpoints,
    get_store,
)
from runbooks.audit.chain import HASHED_FIELDS, Anchor
from runbooks.audit.checkpoints import AnchorConfigError, CheckpointReading
from runbooks.cli.errors import (
    EXIT_FAILED,
    OneLineUsageErrors,
    UserError,
    reported_errors,
)

app = typer.Typer(
    cls=OneLineUsageErrors,
    no_args_is_help=True,
    help="The audit trail: who did what to which target, when, approved by whom.",
)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LAST = 2**62  # the store's record numbers are 64-bit integers


def parse_time(text: str, option: str, now: datetime | None = None) -> datetime:
    """ISO time or date (UTC unless it says otherwise), or a duration ago like ``2h``, ``3d``."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:  # before year 1, or more days than a timedelta holds
            raise UserError(
                f"{option} {text!r} is too far back: give a duration ago that ends after "
                "year 1 (e.g. 30d) or an ISO date"
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not a time: use an ISO time or date "
            "(2026-11-24, 2026-11-24T09:30, 2026-11-24T09:30+01:00) or a duration ago (30m, 2h, 3d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_output(value: str, allowed: tuple[str, ...] = ("table", "json")) -> str:
    if value not in allowed:
        raise UserError(f"--output {value!r} is not supported: use {' or '.join(allowed)}")
    return value


Run = Annotated[
    str | None,
    typer.Option("--run", help="Prefect flow run id, or its first characters as tables show."),
]
Node = Annotated[
    str | None,
    typer.Option("--node", help="Node name: its own records and those of pods evicted from it."),
]
Target = Annotated[
    str | None, typer.Option("--target", help="Any target by name (pod ns/name, approval id).")
]
Actor = Annotated[str | None, typer.Option("--actor", help="Who acted (user, schedule, Slack id).")]
Action = Annotated[
    str | None,
    typer.Option(
        "--action", help="Action, e.g. node.cordon; a trailing '.' or '*' matches a prefix."
    ),
]
Runbook = Annotated[str | None, typer.Option("--runbook", help="Runbook (flow) name.")]
Outcome = Annotated[
    str | None, typer.Option("--outcome", help="Outcome, e.g. failed, ok, approved.")
]
Since = Annotated[
    str | None, typer.Option("--since", help="From this time (ISO, or a duration ago: 2h, 3d).")
]
Until = Annotated[str | None, typer.Option("--until", help="Before this time (exclusive).")]
Day = Annotated[
    str | None, typer.Option("--day", help="One UTC day, e.g. 2026-11-24 (sets --since/--until).")
]


def build_filter(
    run: str | None = None,
    node: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    runbook: str | None = None,
    since: str | None = None,
    until: str | None = None,
    day: str | None = None,
    limit: int | None = None,
    outcome: str | None = None,
) -> RecordFilter:
    """The CLI's filter options as a store query; contradictions are user errors."""
    if node and target:
        raise UserError("give --node or --target, not both")
    if day and (since or until):
        raise UserError("give --day or --since/--until, not both")
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    if day:
        start = parse_time(day, "--day").replace(hour=0, minute=0, second=0, microsecond=0)
        if start.date() == start.date().max:
            raise UserError(f"--day {day!r} is too far ahead: the last day is 9999-12-30")
        end = start + timedelta(days=1)
    if start and end and start >= end:
        raise UserError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    return RecordFilter(
        flow_run_id=run,
        target=node or target,
        target_kind="node" if node else None,
        actor=actor,
        action=action,
        runbook=runbook,
        outcome=outcome,
        since=start,
        until=end,
        limit=limit,
        newest_first=limit is not None,
    )


def _short(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def records_table(records: list[AuditRecord], open_intents: set[int]) -> str:
    rows = []
    for r in records:
        status = r.outcome or ("NO OUTCOME" if r.seq in open_intents else "")
        details = json.dumps(r.details, sort_keys=True, separators=(",", ":")) if r.details else ""
        rows.append(
            [
                str(r.seq),
                r.at[:19].replace("T", " "),
                _short(r.runbook, 26),
                r.flow_run_id[:8] if r.flow_run_id else "-",
                _short(r.actor, 20),
                r.action,
                _short(f"{r.target_kind}/{r.target}", 40),
                r.phase,
                status or "-",
                _short(r.approval_id, 14),
                _short(details, 60),
            ]
        )
    headers = ["SEQ", "TIME (UTC)", "RUNBOOK", "RUN", "ACTOR", "ACTION", "TARGET", "PHASE"]
    return render_table(rows, [*headers, "OUTCOME", "APPROVAL", "DETAILS"])


@app.command()
def show(
    run: Run = None,
    node: Node = None,
    target: Target = None,
    actor: Actor = None,
    action: Action = None,
    runbook: Runbook = None,
    since: Since = None,
    until: Until = None,
    day: Day = None,
    outcome: Outcome = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the newest N records.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Show records, oldest first; an intent with no outcome is marked NO OUTCOME."""
    with reported_errors(AuditStoreError):
        output = parse_output(output)
        if last is not None and not 1 <= last <= MAX_LAST:
            raise UserError(f"--last {last}: give a number of records, 1 to {MAX_LAST}")
        query = build_filter(
            run, node, target, actor, action, runbook, since, until, day, last, outcome
        )
        store = get_store()
        records = store.records(query)
        if last:
            records.reverse()
        open_intents = store.open_intents([r.seq for r in records if r.phase == "intent"])
    if output == "json":
        payload = [
            {**r.model_dump(mode="json"), "open_intent": r.seq in open_intents} for r in records
        ]
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if not records:
        typer.echo(f"no audit records match (store: {store.location})", err=True)
        return
    typer.echo(records_table(records, open_intents))


AnchorsFile = Annotated[
    Path | None,
    typer.Option(
        "--anchors",
        help="Checkpoint file to check against (default RUNBOOK_AUDIT_ANCHOR_FILE, else "
        "audit-anchors.jsonl in the state dir), e.g. a copy fetched from another host.",
    ),
]
PublicKey = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="ed25519 public key (PEM) that checks the checkpoints "
        "(default RUNBOOK_AUDIT_ANCHOR_PUBLIC_KEY, else the signing key's).",
    ),
]


def _checked(
    anchor: str | None,
    anchors_file: Path | None,
    public_key: Path | None,
    prefect: bool = False,
) -> tuple[AuditStore, Verdict, CheckpointReading, int | None]:
    """The chain walked against ``--anchor``, every signed checkpoint of this store and,
    with ``prefect``, every run head its Prefect artifacts kept (and how many there were)."""
    try:
        kept = Anchor.parse(anchor) if anchor else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    store = get_store()
    try:
        reading = checkpoints.read_configured(
            store.location, checkpoints.anchor_settings(), anchors_file, public_key
        )
    except AnchorConfigError as exc:
        raise UserError(str(exc)) from None
    witnessed: list[Anchor] = []
    if prefect:
        from runbooks.audit.prefect_heads import PrefectUnavailable, read_prefect_heads

        try:
            witnessed, _ = read_prefect_heads(store.location)
        except PrefectUnavailable as exc:
            raise AuditStoreError(f"--prefect: {exc}") from None
    verdict = store.verify(kept, [*reading.anchors, *witnessed])
    return store, verdict, reading, (len(witnessed) if prefect else None)


def _checkpoints_line(reading: CheckpointReading) -> str:
    newest = reading.newest
    if newest is None:
        where = reading.path if reading.exists else f"{reading.path} (none yet)"
        return (
            f"no signed checkpoints for this store in {where}: deleting the newest records "
            "(and rewinding the head) cannot be detected; see docs/audit.md, Checkpoints"
        )
    others = f"; {reading.other_stores} for other stores skipped" if reading.other_stores else ""
    return (
        f"checked against {len(reading.anchors)} signed checkpoint(s) in {reading.path}, "
        f"newest at record {newest.seq}{others}"
    )


@app.command()
def verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed by an earlier verify and kept outside the database; "
            "catches a chain rebuilt by someone with database access.",
        ),
    ] = None,
    anchors_file: AnchorsFile = None,
    public_key: PublicKey = None,
    require_checkpoints: Annotated[
        bool,
        typer.Option(
            "--require-checkpoints",
            help="Fail (exit 1) when no signed checkpoint of this store exists: for "
            "installations that anchor, a missing checkpoint file is itself tampering.",
        ),
    ] = False,
    prefect: Annotated[
        bool,
        typer.Option(
            "--prefect",
            help="Also check the final record each run left on its Prefect artifact "
            "(audit-head-<runbook>), read from PREFECT_API_URL.",
        ),
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Check the whole hash chain, and that it still holds every signed checkpoint; exit 1 and
    name the first broken record (or checkpoint line) if tampered with."""
    with reported_errors(AuditStoreError):
        output = parse_output(output)
        store, verdict, reading, run_heads = _checked(anchor, anchors_file, public_key, prefect)
    if require_checkpoints and reading.newest is None:
        reading.problems.append(
            f"{reading.path}: no signed checkpoint of this store "
            f"({'none in the file' if reading.exists else 'the file does not exist'}), "
            "and --require-checkpoints was given"
        )
    ok = verdict.ok and not reading.problems
    if output == "json":
        typer.echo(
            json.dumps(
                {
                    "ok": ok,
                    "store": store.location,
                    "checked": verdict.checked,
                    "first_broken_seq": verdict.first_break.seq if verdict.first_break else None,
                    "reason": verdict.first_break.reason if verdict.first_break else None,
                    "anchor": f"{verdict.head_seq}:{verdict.head_hash}" if ok else None,
                    "checkpoint_file": str(reading.path),
                    "checkpoints": len(reading.anchors),
                    "newest_checkpoint_seq": reading.newest.seq if reading.newest else None,
                    "checkpoint_problems": reading.problems,
                    "prefect_run_heads": run_heads,
                }
            )
        )
    else:
        for problem in reading.problems:
            typer.echo(f"audit checkpoints BROKEN: {problem}", err=True)
        if verdict.first_break is not None:
            typer.echo(
                f"audit trail BROKEN at {verdict.first_break} "
                f"({verdict.checked} records before it are intact; store {store.location})",
                err=True,
            )
        elif reading.problems:
            typer.echo(
                f"audit trail: {verdict.checked} records chain correctly, but the checkpoint "
                "file does not check out (above): treat the trail as tampered with",
                err=True,
            )
        else:
            typer.echo(
                f"audit trail intact: {verdict.checked} records ({store.location}); "
                f"anchor to keep: {verdict.head_seq}:{verdict.head_hash[:16]}"
            )
            typer.echo(_checkpoints_line(reading), err=True)
            if run_heads is not None:
                typer.echo(f"checked against {run_heads} run head(s) kept by Prefect", err=True)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def anchor(
    anchors_file: AnchorsFile = None,
    public_key: PublicKey = None,
) -> None:
    """Verify the chain, then append a signed checkpoint of its head to the checkpoint file
    (RUNBOOK_AUDIT_ANCHOR_KEY signs). Schedule it to cover records written outside runs."""
    with reported_errors(AuditStoreError):
        settings = checkpoints.anchor_settings()
        if settings.key is None:
            raise UserError(
                "no signing key: set RUNBOOK_AUDIT_ANCHOR_KEY to an ed25519 private key file "
                "(create one with `runbook audit keygen PATH`)"
            )
        if anchors_file is not None:
            settings = settings.model_copy(update={"file": anchors_file})
        store, verdict, reading, _ = _checked(None, anchors_file, public_key)
        problems = [str(verdict.first_break)] if verdict.first_break else []
        problems += reading.problems
        if problems:
            typer.echo(
                f"not anchoring a trail that does not verify: {problems[0]} "
                "(run `runbook audit verify`)",
                err=True,
            )
            raise typer.Exit(EXIT_FAILED)
        if verdict.head_seq == 0:
            typer.echo(f"nothing to anchor: the store {store.location} has no records", err=True)
            return
        try:
            written = checkpoints.write(
                store.location,
                verdict.head_seq,
                verdict.head_hash,
                checkpoints.writer_name("runbook audit anchor"),
                settings,
            )
        except AnchorConfigError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise AuditStoreError(
                f"cannot append to the checkpoint file {settings.path}: {exc.strerror}"
            ) from None
    typer.echo(
        f"checkpoint written: record {written.seq}, hash {written.hash[:16]} "
        f"(key {written.key_id}) to {settings.path}"
    )


@app.command()
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the private key (0600).")],
) -> None:
    """Create an ed25519 key pair for signing checkpoints: PATH (private) and PATH.pub."""
    with reported_errors(AuditStoreError):
        try:
            pub = checkpoints.generate_key(path)
        except AnchorConfigError as exc:
            raise UserError(str(exc)) from None
        except OSError as exc:
            raise UserError(f"cannot write a key to {path}: {exc.strerror}") from None
    typer.echo(
        f"private key: {path} (keep it off the database host; the worker signs with it)\n"
        f"public key:  {pub} (give it to whoever verifies)\n"
        f"export RUNBOOK_AUDIT_ANCHOR_KEY={path}"
    )


_CSV_FIELDS = [*HASHED_FIELDS, "hash"]


def _export_row(record: AuditRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


@app.command()
def export(
    format_: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    run: Run = None,
    node: Node = None,
    target: Target = None,
    actor: Actor = None,
    action: Action = None,
    runbook: Runbook = None,
    since: Since = None,
    until: Until = None,
    day: Day = None,
    outcome: Outcome = None,
) -> None:
    """Write records to stdout, oldest first, with their hashes (for archives and other tools)."""
    with reported_errors(AuditStoreError):
        if format_ not in ("jsonl", "csv"):
            raise UserError(f"--format {format_!r} is not supported: use jsonl or csv")
        query = build_filter(
            run, node, target, actor, action, runbook, since, until, day, outcome=outcome
        )
        records = get_store().iter_records(query)
        out = sys.stdout
        if format_ == "jsonl":
            for record in records:
                out.write(json.dumps(_export_row(record), ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, lineterminator="\n")
            writer.writeheader()
            for record in records:
                row = _export_row(record)
                row["details"] = json.dumps(row["details"], sort_keys=True, ensure_ascii=False)
                writer.writerow(row)
        out.flush()
