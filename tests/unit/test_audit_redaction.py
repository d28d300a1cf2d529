"""What may reach the audit trail: a row per case of a secret that must not, and of bulk that
must be cut with its size noted."""

from __future__ import annotations

import json

import pytest

from runbooks.audit.redaction import MAX_DETAILS_BYTES, MAX_ITEMS, clean_details

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: LS0tQ0E=, server: 'https://10.0.0.1:6443'}
  name: prod
users:
- name: admin
  user: {client-key-data: LS0tS0VZ=}
"""
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    ("details", "secret"),
    [
        ({"token": "abc123"}, "abc123"),
        ({"slack_bot_token": "xoxb-1-2"}, "xoxb-1-2"),
        ({"db": {"password": "hunter2"}}, "hunter2"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "dXNlcjpwYXNz"),
        ({"api_key": "k-123"}, "k-123"),
        ({"client_secret": "s3"}, "s3"),
        ({"items": [{"signing_key": "sk"}]}, "sk"),
        ({"config": KUBECONFIG}, "LS0tS0VZ"),
        ({"stderr": f"failed with {PEM}"}, "MIIEowIBAAKCAQEA7"),
        ({"error": "401 for Bearer abcdefghijklmnop"}, "abcdefghijklmnop"),
        ({"note": f"sa token {JWT}"}, "c2lnbmF0dXJlLXZhbHVl"),
        ({"note": "posted with xoxb-123456789-abcdefgh"}, "abcdefgh"),
        ({"url": "postgresql://audit:hunter2@db:5432/audit"}, "hunter2"),
        ({"kubeconfig_yaml": "user:\n  token: sha256~abcdef"}, "sha256~abcdef"),
    ],
)
def test_secrets_are_replaced_before_they_are_stored(details: dict, secret: str) -> None:
    stored = json.dumps(clean_details(details))
    assert secret not in stored
    assert "redacted" in stored


@pytest.mark.parametrize(
    "details",
    [
        {"node": "worker-1", "pods": ["shop/web-0"], "grace_seconds": 30, "dry_run": False},
        {"kubeconfig": "/root/.kube/config", "tokens_evicted": 3, "password_set": True},
        {"message": "PodDisruptionBudget shop/web-pdb allows 0 disruptions"},
    ],
)
def test_ordinary_facts_pass_unchanged(details: dict) -> None:
    assert clean_details(details) == details


def test_long_output_is_cut_with_its_size_noted() -> None:
    log = "x" * 10_000
    stored = clean_details({"stdout": log})["stdout"]
    assert len(stored) < 2_100 and "[truncated: 10000 chars, 10000 bytes]" in stored


def test_long_lists_keep_their_start_and_their_length() -> None:
    pods = [f"shop/web-{i}" for i in range(1000)]
    stored = clean_details({"pods": pods})["pods"]
    assert stored[:MAX_ITEMS] == pods[:MAX_ITEMS]
    assert stored[-1] == "[truncated: 1000 items in total]"


def test_huge_details_become_a_preview_with_the_original_size() -> None:
    many = {f"key{i}": "v" * 1500 for i in range(99)}
    stored = clean_details(many)
    assert stored["truncated"] is True and stored["original_bytes"] > MAX_DETAILS_BYTES
    assert len(stored["preview"]) < 2_100


def test_bytes_and_objects_are_described_not_dumped() -> None:
    stored = clean_details({"body": b"\x00" * 4096, "when": object()})
    assert stored["body"] == "[4096 bytes omitted]"
    assert stored["when"].startswith("<object object")
