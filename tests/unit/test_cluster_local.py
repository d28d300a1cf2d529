"""Local-cluster pieces that need no Go and no cluster: PKI, KWOK config, CLI contract."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from typer.testing import CliRunner

from runbooks.cli.main import app
from runbooks.cluster.kwok_config import STAGE_FILES, write_kwok_config
from runbooks.cluster.pki import ensure_pki


def test_pki_serving_cert_covers_loopback_and_admin_is_system_masters(tmp_path: Path):
    ensure_pki(tmp_path / "pki")

    server = x509.load_pem_x509_certificate((tmp_path / "pki" / "apiserver.crt").read_bytes())
    admin = x509.load_pem_x509_certificate((tmp_path / "pki" / "admin.crt").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    orgs = admin.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    assert oct((tmp_path / "pki" / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_pki_is_kept_when_it_exists(tmp_path: Path):
    ensure_pki(tmp_path / "pki")
    first = (tmp_path / "pki" / "ca.crt").read_bytes()

    ensure_pki(tmp_path / "pki")

    assert (tmp_path / "pki" / "ca.crt").read_bytes() == first


def test_kwok_config_carries_every_stage_including_chaos(tmp_path: Path):
    stages = tmp_path / "stages"
    for relative in STAGE_FILES:
        path = stages / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        name = Path(relative).stem
        path.write_text(
            f"apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: {name}\n"
        )

    write_kwok_config(stages, tmp_path / "kwok.yaml")
    docs = list(yaml.safe_load_all((tmp_path / "kwok.yaml").read_text()))

    assert docs[0]["kind"] == "KwokConfiguration"
    names = {d["metadata"]["name"] for d in docs[1:]}
    assert {"node-initialize", "node-not-ready", "pod-ready", "pod-delete"} <= names


def test_status_of_unknown_cluster_says_how_to_create_it():
    result = CliRunner().invoke(app, ["cluster", "status", "--name", "never-made"])

    assert result.exit_code == 3
    assert "runbook cluster up --name never-made" in result.output


def test_node_command_on_stopped_cluster_is_a_user_error():
    result = CliRunner().invoke(
        app, ["cluster", "node", "worker-1", "--not-ready", "--name", "nope"]
    )

    assert result.exit_code == 2
    assert "not running" in result.output
