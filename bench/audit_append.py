"""How many audit records per second the store appends, on SQLite and on PostgreSQL.

Each append is its own transaction (lock head, insert, update head, commit), as in a runbook.
Median of several rounds, one writer, plus two writer processes at once (total rate).
PostgreSQL is a private server started from Debian's binaries with fsync on (production
durability); SQLite is a WAL file in a temp dir with the default synchronous=FULL.

    python bench/audit_append.py [--rounds 5] [--records 500] [--write-docs]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbooks.audit import AuditStore, NewRecord  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
LOAD: list[float] = []  # 1-minute load average at start and end: other work on the machine
HEADING = "## Audit store"


def _record(i: int, writer: str) -> NewRecord:
    return NewRecord(
        runbook="rolling-node-maintenance",
        actor=writer,
        flow_run_id="bench-run",
        action="pod.evict",
        target_kind="pod",
        target=f"shop/web-{i}",
        phase="intent" if i % 2 == 0 else "outcome",
        details={"node": f"worker-{i % 50}", "reason": "kernel update", "grace_seconds": 30},
    )


def append_many(url: str, count: int, writer: str) -> float:
    """Append ``count`` records one transaction each; returns the seconds taken."""
    store = AuditStore(url)
    store.ensure_schema()
    start = time.perf_counter()
    for i in range(count):
        store.append(_record(i, writer))
    elapsed = time.perf_counter() - start
    store.dispose()
    return elapsed


def _writer(args: tuple[str, int, str]) -> float:
    return append_many(*args)


def _ready(_: int) -> None:
    time.sleep(0.2)  # both workers imported and idle before the clock starts


def measure(make_url: Callable[[], str], rounds: int, count: int) -> dict[str, float]:
    single, double = [], []
    append_many(make_url(), 50, "warmup")
    for _ in range(rounds):
        single.append(count / append_many(make_url(), count, "bench"))
    ctx = multiprocessing.get_context("spawn")
    for _ in range(rounds):
        url = make_url()
        AuditStore(url).ensure_schema()
        with ctx.Pool(2) as pool:
            pool.map(_ready, [0, 1], chunksize=1)
            start = time.perf_counter()
            pool.map(_writer, [(url, count, "a"), (url, count, "b")], chunksize=1)
            elapsed = time.perf_counter() - start
        store = AuditStore(url)
        verdict = store.verify()
        assert verdict.ok and verdict.checked == 2 * count, verdict
        double.append(2 * count / elapsed)
    return {
        "single_median": statistics.median(single),
        "single_min": min(single),
        "single_max": max(single),
        "two_median": statistics.median(double),
    }


def run(rounds: int, count: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    LOAD.append(os.getloadavg()[0])
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        n = iter(range(10**6))
        results["SQLite (WAL, synchronous=FULL)"] = measure(
            lambda: f"sqlite:///{tmp}/audit-{next(n)}.db", rounds, count
        )
    from tests.postgres.server import PostgresUnavailable, running_postgres

    try:
        with running_postgres(fsync=True) as server:
            results["PostgreSQL 15 (fsync on, 127.0.0.1)"] = measure(
                lambda: server.create_database("bench"), rounds, count
            )
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    LOAD.append(os.getloadavg()[0])
    return results


def markdown(results: dict[str, dict[str, float]], rounds: int, count: int) -> str:
    lines = [
        HEADING,
        "",
        f"Appends per second, one transaction per record (lock the chain head, insert, commit), "
        f"median of {rounds} rounds of {count} records; the two-writer column is the total rate "
        "of two processes appending to one chain at once (chain verified after each round). "
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on this machine (2 vCPU; "
        f"1-minute load average {LOAD[0]:.1f} at the start, {LOAD[-1]:.1f} at the end, "
        "from other work sharing it: expect faster on an idle machine).",
        "",
        "| Backend | 1 writer, median (min-max) records/s | 2 writers, median records/s |",
        "|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['single_median']:.0f} ({r['single_min']:.0f}-{r['single_max']:.0f}) "
            f"| {r['two_median']:.0f} |"
        )
    lines += [
        "",
        f"Command: `python bench/audit_append.py --rounds {rounds} --records {count} --write-docs`",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    """Replace our own section in docs/benchmarks.md (others own the rest of the file)."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS}")
    args = parser.parse_args()
    results = run(args.rounds, args.records)
    section = markdown(results, args.rounds, args.records)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
