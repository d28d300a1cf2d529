"""`runbook backup-check` given bad flags: one line naming the flag, exit 2, nothing read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbooks.cli.main import app

NOT_EXECUTABLE = Path(__file__)  # a file, but not a program


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpo", "soon"], "--rpo: cannot read duration 'soon'"),
        (["--rpo", "-5m"], "--rpo"),
        (["--rpo", "400d"], "--rpo: duration 400d is too long"),
        (["--stuck-after", "2 hours"], "--stuck-after: cannot read duration"),
        (["--drill-timeout", "forever"], "--drill-timeout: cannot read duration"),
        (["--max-warnings", "-1"], "--max-warnings must be 0 or more"),
        (["--max-warnings", "many"], "--max-warnings"),
        (["--velero-namespace", "Velero_NS"], "--velero-namespace: 'Velero_NS' is not a namespace"),
        (["--cronjob-selector", "app in (a"], "--cronjob-selector: not a label selector"),
        (["--cronjob-selector", " "], "--cronjob-selector: the selector is empty"),
        (["--etcd-snapshots", "/nonexistent/snapshots"], "is not a directory"),
        (
            ["--etcdutl", "/nonexistent/etcdutl"],
            "--etcdutl /nonexistent/etcdutl is not an executable",
        ),
        (["--etcdutl", str(NOT_EXECUTABLE)], "is not an executable file"),
        (["--output", "yaml"], "--output must be text or json"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig"),
        (["--no-such-flag"], "No such option"),
    ],
)
def test_backup_check_with_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["backup-check", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_etcd_snapshots_without_etcdutl_anywhere_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no etcdutl on it
    result = CliRunner().invoke(
        app, ["backup-check", "--velero-namespace", "", "--etcd-snapshots", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: etcdutl not found on PATH; install it or pass --etcdutl PATH"
    )
