"""One canonical JSON and digest for plans, approvals and the audit chain; existing chains still
verify after the move (a known record's hash is pinned)."""

from __future__ import annotations

from runbooks.approvals.record import plan_digest
from runbooks.audit.chain import record_hash
from runbooks.kit.digest import canonical_json, digest, sha256_hex

# A record as the store hashes it (details as the stored JSON text, non-ASCII kept), and the
# hash the audit chain gave it before the canonical form moved to runbooks/kit/digest.py.
KNOWN_ROW = {
    "seq": 7,
    "at": "2026-11-24T09:30:00.123456+00:00",
    "runbook": "rolling-node-maintenance",
    "flow_run_id": "3f1c",
    "actor": "alice (CLI)",
    "action": "node.cordon",
    "target_kind": "node",
    "target": "worker-3",
    "phase": "outcome",
    "outcome": "succeeded",
    "intent_seq": 6,
    "approval_id": "apr_0123456789abcdef0123",
    "details": '{"evicted":["shop/api-1"],"note":"déjà — ok"}',
    "prev_hash": "ab" * 32,
}
KNOWN_HASH = "d5dd38ed22112f69f1b31548f2366f617912db62b6d735af210f18d75f2bc7e0"


def test_a_known_audit_records_hash_is_unchanged_so_existing_chains_still_verify():
    assert record_hash(KNOWN_ROW) == KNOWN_HASH


def test_canonical_json_sorts_keys_has_no_spaces_and_keeps_utf8_readable():
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'


def test_the_same_value_written_in_another_key_order_has_the_same_digest():
    assert digest({"nodes": ["w-1"], "cluster": "c"}) == digest({"cluster": "c", "nodes": ["w-1"]})
    assert digest({"nodes": ["w-1"]}) != digest({"nodes": ["w-2"]})


def test_an_approvals_plan_digest_is_the_sha256_of_the_plan_as_shown():
    assert plan_digest("cordon worker-3") == "sha256:" + sha256_hex("cordon worker-3")
