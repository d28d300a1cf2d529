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
    select,
    update,
)

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
)


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

    def create(self, approval: Approval) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(approvals).values(**self._row(approval)))

    def get(self, approval_id: str) -> Approval | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        for key in ("requested_at", "expires_at", "decided_at"):
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

    @staticmethod
    def _row(approval: Approval) -> dict[str, object]:
        data = approval.model_dump(mode="json")
        for key in ("requested_at", "expires_at", "decided_at"):
            data[key] = _naive_utc(getattr(approval, key))
        return data
