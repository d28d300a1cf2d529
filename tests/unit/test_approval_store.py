"""The approvals table: one atomic compare-and-set decides, however many try at once.

On SQLite and on a real PostgreSQL (marked ``postgres``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbooks.approvals.policy import ApproverPolicy
from runbooks.approvals.record import Approval, ApprovalState, new_approval_id, with_vote
from runbooks.approvals.store import ApprovalStore
from runbooks.audit import AuditStore

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ApprovalStore:
    """On the audit store's own engine, as in production: SQLite, and a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = str(request.getfixturevalue("postgres_server").create_database("approvals"))
    return ApprovalStore(AuditStore(url).engine)


def pending(store: ApprovalStore, min_approvals: int = 1, ttl: timedelta = timedelta(hours=1)):
    approval = Approval(
        id=new_approval_id(),
        flow_run_id="run-1",
        runbook="demo",
        title="t",
        plan="p",
        plan_digest="sha256:00",
        requester="U0REQ",
        policy=ApproverPolicy.model_validate(
            {"users": [f"U0P{i}" for i in range(20)], "min_approvals": min_approvals}
        ),
        requested_at=NOW,
        expires_at=NOW + ttl,
    )
    store.create(approval)
    return approval


def test_a_row_reads_back_as_written(store: ApprovalStore):
    approval = pending(store)
    store.set_message(approval.id, channel="C0OPS", ts="1.000001")

    read = store.get(approval.id)

    assert read == approval.model_copy(update={"slack_channel": "C0OPS", "slack_ts": "1.000001"})


def test_twenty_concurrent_decisions_on_the_same_row_change_it_once(store: ApprovalStore):
    approval = pending(store)

    def decide(i: int) -> bool:
        new = with_vote(approval, user=f"U0P{i}", approve=i % 2 == 0, at=NOW)
        return store.compare_and_set(approval, new, now=NOW)

    with ThreadPoolExecutor(20) as pool:
        wins = list(pool.map(decide, range(20)))

    assert wins.count(True) == 1
    final = store.get(approval.id)
    assert final is not None and final.state.is_final and len(final.votes) == 1


def test_a_final_state_never_changes(store: ApprovalStore):
    approval = pending(store)
    rejected = with_vote(approval, user="U0P1", approve=False, at=NOW)
    assert store.compare_and_set(approval, rejected, now=NOW)

    fresh = store.get(approval.id)
    assert fresh is not None
    approve = with_vote(fresh, user="U0P2", approve=True, at=NOW)
    expire = fresh.model_copy(update={"state": ApprovalState.EXPIRED})

    assert not store.compare_and_set(fresh, approve, now=NOW)
    assert not store.compare_and_set(fresh, expire, now=NOW)
    assert store.get(approval.id).state is ApprovalState.REJECTED  # type: ignore[union-attr]


def test_no_vote_counts_after_the_time_limit_but_expiry_does(store: ApprovalStore):
    approval = pending(store, ttl=timedelta(seconds=1))
    later = NOW + timedelta(seconds=2)

    late_vote = with_vote(approval, user="U0P1", approve=True, at=later)
    expired = approval.model_copy(update={"state": ApprovalState.EXPIRED, "decided_at": later})

    assert not store.compare_and_set(approval, late_vote, now=later)
    assert [a.id for a in store.pending_expired(later)] == [approval.id]
    assert store.compare_and_set(approval, expired, now=later)
    assert store.pending_expired(later) == []


def test_two_person_rule_needs_two_distinct_people(store: ApprovalStore):
    approval = pending(store, min_approvals=2)
    once = with_vote(approval, user="U0P1", approve=True, at=NOW)
    assert once.state is ApprovalState.PENDING
    assert store.compare_and_set(approval, once, now=NOW)

    seen = store.get(approval.id)
    assert seen is not None
    twice = with_vote(seen, user="U0P2", approve=True, at=NOW)

    assert twice.state is ApprovalState.APPROVED
    assert store.compare_and_set(seen, twice, now=NOW)
    assert not store.compare_and_set(seen, twice, now=NOW)  # stale version: no double count
