"""The append-only audit store on SQLite (default) or PostgreSQL, through SQLAlchemy.

Appends are serialised so several processes (flow runs, the listener) extend one chain:
SQLite takes its write lock up front (``BEGIN IMMEDIATE``), PostgreSQL locks the head row
(``SELECT ... FOR UPDATE``). Reads for ``verify`` use one snapshot so a concurrent append
is never mistaken for tampering.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from runbooks.audit import chain, schema
from runbooks.audit.models import AuditRecord, NewRecord, RecordFilter, RunSummary, now_text
from runbooks.audit.queries import where_clauses
from runbooks.audit.redaction import clean_details, clean_text
from runbooks.private_paths import private_files
from runbooks.settings import get_settings

_PG_SCHEMA_LOCK = 0x6B72_6175  # "krau": serialises table creation across processes


# Built once: the append path runs these for every record.
_LOCK_HEAD = (
    select(schema.head.c.seq, schema.head.c.hash)
    .where(schema.head.c.id == schema.HEAD_ID)
    .with_for_update()
)
_INSERT_RECORD = insert(schema.records)
_MOVE_HEAD = (
    update(schema.head)
    .where(schema.head.c.id == schema.HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


class AuditStoreError(RuntimeError):
    """The audit store cannot be reached or used; the message names the store and the cause."""


class AuditStoreConfigError(AuditStoreError, ValueError):
    """The audit URL cannot be used as configured (unreadable, an unsupported database or
    driver, the driver not installed): the operator's input, so the CLI exits 2, not 1."""


def default_url() -> str:
    """``RUNBOOK_AUDIT_URL``, else ``sqlite:///<state dir>/audit.db``."""
    settings = get_settings()
    if settings.audit_url:
        return settings.audit_url
    return f"sqlite:///{Path(settings.state_dir) / 'audit.db'}"


def _normalise(url: str) -> URL:
    """Accept plain ``postgresql://`` URLs by using the psycopg 3 driver we depend on."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise AuditStoreConfigError(
            f"audit store URL {url!r} is not a SQLAlchemy URL: {exc}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise AuditStoreConfigError(
            f"audit store URL {parsed.render_as_string(hide_password=True)!r}: "
            "only sqlite:/// and postgresql:// (postgresql+psycopg://) are supported"
        )
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        private_files(Path(url.database), Path(f"{url.database}.lock"))  # 0600, dir 0700
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("audit_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class AuditStore:
    """One audit store; safe to share in a process and to use from several processes at once."""

    def __init__(self, url: str | None = None) -> None:
        self.url = _normalise(url or default_url())
        self.backend = self.url.get_backend_name()
        self._lock_path: str | None = None
        if self.backend == "sqlite":
            self.engine = _sqlite_engine(self.url)
            if self.url.database and self.url.database != ":memory:":
                self._lock_path = f"{self.url.database}.lock"
        else:
            try:
                self.engine = create_engine(self.url, pool_pre_ping=True)
            except ImportError as exc:  # the driver is an extra, not installed by default
                raise AuditStoreConfigError(
                    f"audit store {self.location}: the PostgreSQL driver ({exc.name or exc}) "
                    "is not installed: pip install 'kube-runbooks[postgres]'"
                ) from None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    def _fail(self, doing: str, exc: Exception) -> AuditStoreError:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return AuditStoreError(f"audit store {self.location}: cannot {doing}: {cause}")

    @contextmanager
    def _appender(self) -> Iterator[None]:
        """On SQLite, queue appenders on a lock file first: SQLite's own busy handler polls
        with sleeps of up to 100 ms, an flock wakes the next writer at once. BEGIN IMMEDIATE
        stays the guarantee (it also holds off writers that skip this lock)."""
        if self._lock_path is None:
            yield
            return
        with open(self._lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _write_connection(self) -> Connection:
        conn = self.engine.connect()
        conn.execution_options(audit_write=True)
        return conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on the store's database for neighbours (the approvals table):
        on SQLite it takes the write lock up front (BEGIN IMMEDIATE), so a read-then-write
        (compare-and-set) waits its turn instead of failing on a lock upgrade."""
        with self._write_connection() as conn, conn.begin():
            yield conn

    def ensure_schema(self) -> None:
        """Create the tables and the head row if missing; idempotent and safe to race."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                with self._write_connection() as conn, conn.begin():
                    if self.backend == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
                    schema.metadata.create_all(conn)
                    exists = conn.execute(
                        select(schema.head.c.id).where(schema.head.c.id == schema.HEAD_ID)
                    ).first()
                    if exists is None:
                        conn.execute(
                            insert(schema.head).values(id=schema.HEAD_ID, seq=0, hash=chain.GENESIS)
                        )
            except IntegrityError:
                pass  # another process created the head row first
            except SQLAlchemyError as exc:
                raise self._fail("create its tables", exc) from None
            self._ready = True

    def append(self, new: NewRecord) -> AuditRecord:
        """Add one record at the end of the chain, secrets redacted; returns it as stored."""
        self.ensure_schema()
        details_text = chain.canonical_json(clean_details(new.details))
        row: dict[str, Any] = {
            "runbook": new.runbook,
            "flow_run_id": new.flow_run_id,
            "actor": new.actor,
            "action": new.action,
            "target_kind": new.target_kind,
            "target": clean_text(new.target),
            "phase": new.phase,
            "outcome": new.outcome,
            "intent_seq": new.intent_seq,
            "approval_id": new.approval_id,
            "details": details_text,
        }
        try:
            with self._appender(), self._write_connection() as conn, conn.begin():
                last = conn.execute(_LOCK_HEAD).one()
                row["seq"] = last.seq + 1
                row["at"] = now_text()  # taken under the lock, so times never go backwards
                row["prev_hash"] = last.hash
                row["hash"] = chain.record_hash(row)
                conn.execute(_INSERT_RECORD, row)
                conn.execute(_MOVE_HEAD, {"new_seq": row["seq"], "new_hash": row["hash"]})
        except SQLAlchemyError as exc:
            raise self._fail("append a record", exc) from None
        return _to_record(row)

    def records(self, query: RecordFilter | None = None) -> list[AuditRecord]:
        """Records matching the filter, oldest first unless ``newest_first``."""
        query = query or RecordFilter()
        self.ensure_schema()
        stmt = select(schema.records).where(*where_clauses(query))
        order = schema.records.c.seq.desc() if query.newest_first else schema.records.c.seq
        stmt = stmt.order_by(order)
        if query.limit:
            stmt = stmt.limit(query.limit)
        try:
            with self.engine.connect() as conn:
                return [_to_record(dict(r._mapping)) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise self._fail("read records", exc) from None

    def verify(
        self, anchor: chain.Anchor | None = None, anchors: Sequence[chain.Anchor] = ()
    ) -> chain.Verdict:
        """Walk the whole chain in one snapshot; the verdict names the first broken record.

        ``anchor``/``anchors``: hashes kept outside the database (signed checkpoints), which
        catch what the database alone cannot: the newest records deleted and the head rewound."""
        self.ensure_schema()
        try:
            with self.engine.connect() as conn:
                if self.backend == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    head = conn.execute(
                        select(schema.head.c.seq, schema.head.c.hash).where(
                            schema.head.c.id == schema.HEAD_ID
                        )
                    ).one_or_none()
                    result = conn.execution_options(yield_per=1000).execute(
                        select(schema.records).order_by(schema.records.c.seq)
                    )
                    rows = (dict(r._mapping) for r in result)
                    if head is None:
                        return chain.walk(rows, anchor=anchor, anchors=anchors)
                    return chain.walk(rows, head.seq, head.hash, anchor=anchor, anchors=anchors)
        except SQLAlchemyError as exc:
            raise self._fail("read the chain", exc) from None

    def iter_records(self, query: RecordFilter | None = None) -> Iterator[AuditRecord]:
        """Like ``records`` but streamed, for exports of any size."""
        query = query or RecordFilter()
        self.ensure_schema()
        stmt = select(schema.records).where(*where_clauses(query)).order_by(schema.records.c.seq)
        if query.limit:
            stmt = stmt.limit(query.limit)
        try:
            with self.engine.connect() as conn:
                for r in conn.execution_options(yield_per=1000).execute(stmt):
                    yield _to_record(dict(r._mapping))
        except SQLAlchemyError as exc:
            raise self._fail("read records", exc) from None

    def open_intents(self, intent_seqs: list[int]) -> set[int]:
        """Which of these intents have no outcome yet: a crash, or a step still running."""
        if not intent_seqs:
            return set()
        self.ensure_schema()
        done: set[int] = set()
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(intent_seqs), 500):
                    chunk = intent_seqs[start : start + 500]
                    stmt = select(schema.records.c.intent_seq).where(
                        schema.records.c.intent_seq.in_(chunk)
                    )
                    done.update(r.intent_seq for r in conn.execute(stmt))
        except SQLAlchemyError as exc:
            raise self._fail("read records", exc) from None
        return set(intent_seqs) - done

    def runs(
        self, flow_run_ids: list[str] | None = None, limit: int | None = None
    ) -> list[RunSummary]:
        """Per flow run: runbook, who started it (first record's actor), first/last record
        time, record count and failures; newest first."""
        self.ensure_schema()
        r = schema.records.c
        stmt = (
            select(
                r.flow_run_id,
                func.min(r.seq).label("first_seq"),
                func.min(r.at).label("first_at"),
                func.max(r.at).label("last_at"),
                func.count().label("records"),
                func.sum(case((r.outcome == "failed", 1), else_=0)).label("failed"),
            )
            .where(r.flow_run_id.is_not(None))
            .group_by(r.flow_run_id)
            .order_by(func.min(r.at).desc())
        )
        if flow_run_ids is not None:
            stmt = stmt.where(r.flow_run_id.in_(flow_run_ids))
        if limit:
            stmt = stmt.limit(limit)
        try:
            with self.engine.connect() as conn:
                groups = list(conn.execute(stmt))
                firsts = {
                    row.seq: row
                    for row in conn.execute(
                        select(r.seq, r.runbook, r.actor).where(
                            r.seq.in_([g.first_seq for g in groups])
                        )
                    )
                }
        except SQLAlchemyError as exc:
            raise self._fail("read records", exc) from None
        return [
            RunSummary(
                flow_run_id=g.flow_run_id,
                runbook=firsts[g.first_seq].runbook,
                actor=firsts[g.first_seq].actor,
                first_at=g.first_at,
                last_at=g.last_at,
                records=g.records,
                failed=int(g.failed or 0),
            )
            for g in groups
        ]

    def dispose(self) -> None:
        self.engine.dispose()


def _to_record(row: dict[str, Any]) -> AuditRecord:
    data = dict(row)
    data["details"] = json.loads(data["details"]) if data["details"] else {}
    return AuditRecord.model_validate(data)


_STORES: dict[tuple[str, int], AuditStore] = {}
_STORES_LOCK = threading.Lock()


def get_store(url: str | None = None) -> AuditStore:
    """The store for ``url`` (default from settings), one per process, created on first use."""
    key = (url or default_url(), os.getpid())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = AuditStore(key[0])
            _STORES[key] = store
        return store
