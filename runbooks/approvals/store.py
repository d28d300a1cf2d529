"""The approvals table and its one way of changing: an atomic compare-and-set.

Idempotency lives here, never in memory: double clicks, Slack retries and two listeners
all race on the same ``UPDATE … WHERE state='pending' AND version=:seen``; one wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from runbooks.approvals.database import default_engine
from runbooks.approvals.record import Approval, ApprovalState

metadata = MetaData()

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_run_id", String(64), nullable=False, index=True),
    Column("runbook", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("plan", Text, nullable=False),
    Column("plan_digest", String(200), nullable=False),
    Column("requester", String(200), nullable=False),
    Column("policy", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("votes", JSON, nullable=False),
    Column("requested_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    Column("reason", Text),
    Column("slack_channel", String(64)),
    Column("slack_ts", String(64)),
    Column("version", Integer, nullable=False, default=0),
    # decided, not yet resumed: retry after this time (added after the first release)
    Column("resume_after", DateTime),
)


_TIMES = ("requested_at", "expires_at", "decided_at", "resume_after")


def _naive_utc(value: datetime | None) -> datetime | None:
    """Stored as naive UTC so SQLite and PostgreSQL compare the same way."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


class ApprovalStore:
    """Read and move approval rows. Every change is one conditional UPDATE."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()
        metadata.create_all(self.engine, tables=[approvals])
        self._add_resume_after()

    def _add_resume_after(self) -> None:
        """Tables created before ``resume_after`` existed get the column (NULL: nothing due)."""
        columns = {c["name"] for c in inspect(self.engine).get_columns("approvals")}
        if "resume_after" in columns:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(text("ALTER TABLE approvals ADD COLUMN resume_after TIMESTAMP"))
        except DBAPIError:  # another process added it first
            columns = {c["name"] for c in inspect(self.engine).get_columns("approvals")}
            if "resume_after" not in columns:
                raise

    def create(self, approval: Approval) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(approvals).values(**self._row(approval)))

    def get(self, approval_id: str) -> Approval | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        for key in _TIMES:
            data[key] = _aware(data[key])
        return Approval.model_validate(data)

    def set_message(self, approval_id: str, *, channel: str, ts: str) -> None:
        """Where the Slack view lives (channel ID + ts), for chat.update and the thread."""
        with self.engine.begin() as conn:
            conn.execute(
                update(approvals)
                .where(approvals.c.id == approval_id)
                .values(slack_channel=channel, slack_ts=ts)
            )

    def compare_and_set(self, seen: Approval, new: Approval, *, now: datetime) -> bool:
        """Write ``new`` only if the row is still exactly ``seen`` and pending.

        Votes and decisions also require the approval not to have expired at ``now``;
        moving to ``expired`` does not. True when this call made the change.
        """
        conditions = [
            approvals.c.id == seen.id,
            approvals.c.version == seen.version,
            approvals.c.state == ApprovalState.PENDING.value,
        ]
        if new.state is not ApprovalState.EXPIRED:
            conditions.append(approvals.c.expires_at > _naive_utc(now))
        with self.engine.begin() as conn:
            result = conn.execute(
                update(approvals)
                .where(*conditions)
                .values(
                    state=new.state.value,
                    votes=[v.model_dump(mode="json") for v in new.votes],
                    decided_at=_naive_utc(new.decided_at),
                    reason=new.reason,
                    resume_after=_naive_utc(new.resume_after),
                    version=seen.version + 1,
                )
            )
        return result.rowcount == 1

    def pending_expired(self, now: datetime) -> list[Approval]:
        """Pending rows past their time limit (for a sweep; the gate expires its own)."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(approvals.c.id).where(
                    approvals.c.state == ApprovalState.PENDING.value,
                    approvals.c.expires_at <= _naive_utc(now),
                )
            ).scalars()
            found = [self.get(i) for i in ids]
        return [a for a in found if a is not None]

    # --- decided, not yet resumed --------------------------------------------------------------
    def resume_due(self, now: datetime) -> list[Approval]:
        """Decisions whose run has not been resumed, and whose retry time has come."""
        with self.engine.connect() as conn:
            ids = list(
                conn.execute(
                    select(approvals.c.id).where(
                        approvals.c.state != ApprovalState.PENDING.value,
                        approvals.c.resume_after <= _naive_utc(now),
                    )
                ).scalars()
            )
        found = [self.get(i) for i in ids]
        return [a for a in found if a is not None]

    def claim_resume(self, seen: Approval, *, until: datetime) -> Approval | None:
        """Take the retry (so one listener of several does it); the claim lapses at ``until``.
        The claimed row, or None if another listener moved it first."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == seen.id,
                    approvals.c.version == seen.version,
                    approvals.c.state != ApprovalState.PENDING.value,
                    approvals.c.resume_after.is_not(None),
                )
                .values(resume_after=_naive_utc(until), version=seen.version + 1)
            )
        return self.get(seen.id) if result.rowcount == 1 else None

    def retry_resume_at(self, approval_id: str, at: datetime) -> None:
        """The resume failed: due again at ``at``."""
        self._set_resume_after(approval_id, at)

    def resume_done(self, approval_id: str) -> None:
        """The run was resumed (or is past needing it) and that is audited: nothing due."""
        self._set_resume_after(approval_id, None)

    def _set_resume_after(self, approval_id: str, at: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(approvals)
                .where(
                    approvals.c.id == approval_id,
                    approvals.c.state != ApprovalState.PENDING.value,
                )
                .values(resume_after=_naive_utc(at))
            )

    @staticmethod
    def _row(approval: Approval) -> dict[str, object]:
        data = approval.model_dump(mode="json")
        for key in _TIMES:
            data[key] = _naive_utc(getattr(approval, key))
        return data
