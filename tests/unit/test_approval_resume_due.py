"""Decided but not yet resumed is a state in the approvals table: due at a time, claimed by one
listener at a time, cleared once the resume is audited. And databases created before the
column existed gain it with nothing due (old decisions are not resumed again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, MetaData, Table, insert

from runbooks.approvals import store as store_module
from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval, ApprovalState, new_approval_id, with_vote
from runbooks.approvals.store import ApprovalStore
from runbooks.audit import AuditStore

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """The audit store's own engine, as in production: SQLite, and a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = str(request.getfixturevalue("postgres_server").create_database("resume_due"))
    return AuditStore(url).engine


def decided(store: ApprovalStore, resume_after: datetime | None) -> Approval:
    approval = Approval(
        id=new_approval_id(),
        flow_run_id="run-1",
        runbook="demo",
        title="t",
        plan="p",
        plan_digest="sha256:00",
        requester="U0REQ",
        policy=ApproverPolicy.model_validate({"users": ["U0ALICE"]}),
        requested_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )
    store.create(approval)
    new = with_vote(approval, user="U0ALICE", approve=True, at=NOW)
    assert store.compare_and_set(
        approval, new.model_copy(update={"resume_after": resume_after}), now=NOW
    )
    stored = store.get(approval.id)
    assert stored is not None
    return stored


def test_a_decision_is_due_for_a_resume_only_after_its_time(engine: Engine):
    store = ApprovalStore(engine)
    later = decided(store, NOW + timedelta(seconds=60))
    now_due = decided(store, NOW)
    resumed = decided(store, None)

    due = [a.id for a in store.resume_due(NOW)]

    assert due == [now_due.id]
    assert later.id not in due and resumed.id not in due
    assert store.get(now_due.id).state is ApprovalState.APPROVED  # type: ignore[union-attr]


def test_two_listeners_claim_a_due_resume_once(engine: Engine):
    store = ApprovalStore(engine)
    approval = decided(store, NOW)
    until = NOW + timedelta(seconds=60)

    first = store.claim_resume(approval, until=until)
    second = store.claim_resume(approval, until=until)

    assert first is not None and first.resume_after == until
    assert second is None
    assert store.resume_due(NOW) == []  # claimed: not due again until the claim lapses
    store.resume_done(approval.id)
    assert store.get(approval.id).resume_after is None  # type: ignore[union-attr]


def test_a_table_from_before_gains_the_column_with_nothing_due(engine: Engine):
    old = MetaData()
    columns = [c for c in store_module.approvals.columns if c.name != "resume_after"]
    table = Table("approvals", old, *(Column(c.name, c.type) for c in columns))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(table).values(
                id="apr_old",
                flow_run_id="run-0",
                runbook="demo",
                title="t",
                plan="p",
                plan_digest="sha256:00",
                requester="U0REQ",
                policy={"users": ["U0ALICE"]},
                state="approved",
                votes=[],
                requested_at=NOW.replace(tzinfo=None),
                expires_at=NOW.replace(tzinfo=None),
                version=1,
            )
        )

    store = ApprovalStore(engine)
    ApprovalStore(engine)  # a second listener starting: no error

    assert store.get("apr_old").resume_after is None  # type: ignore[union-attr]
    assert store.resume_due(NOW + timedelta(days=1)) == []
